"""Promotion requests and the four-eyes decision that moves a rollout exactly one stage."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from rolloutops import policy
from rolloutops.audit import audit_record
from rolloutops.exceptions import Conflict
from rolloutops.notifications import notify

from .gates import next_stage, promotion_gates
from .models import PromotionRequest, PromotionStatus, Rollout, TransitionAction
from .services import _locked, _transition


class PromotionRefused(Conflict):
    """409 with every unmet condition."""

    def __init__(self, unmet: list[str], promotion: PromotionRequest | None = None):
        super().__init__("promotion refused: " + "; ".join(unmet), unmet=unmet,
                         promotion=promotion.pk if promotion else None)
        self.unmet = unmet


def promotion_request(*, actor, rollout: Rollout, reason: str = "") -> PromotionRequest:
    """An operator asks to move to the next stage. Gates are checked now (and again on approval);
    a refused request is kept, with its unmet conditions, so the history shows the attempt."""
    policy.check(actor, "promotion.request")
    refused = None
    with transaction.atomic():
        rollout = _locked(rollout)
        pending = rollout.promotions.filter(status=PromotionStatus.PENDING).first()
        if pending is not None:
            raise Conflict(f"promotion #{pending.pk} ({pending.from_stage} → {pending.to_stage}) already waits for a manager",
                           promotion=pending.pk)
        target = next_stage(rollout)
        report = promotion_gates(rollout=rollout)
        status = PromotionStatus.PENDING if report.passed else PromotionStatus.REFUSED
        promotion = PromotionRequest.objects.create(
            rollout=rollout, from_stage=rollout.stage_name, to_stage=target.name if target else "",
            status=status, requested_by=actor, reason=reason, unmet=report.unmet, evidence=report.evidence,
            decided_at=None if report.passed else timezone.now(),
        )
        action = "promotion.requested" if report.passed else "promotion.refused"
        audit_record(actor=actor, action=action, obj=promotion,
                     after={"from": promotion.from_stage, "to": promotion.to_stage, "unmet": report.unmet})
        if report.passed:
            notify(kind="promotion.requested", summary=f"{rollout.version}: {promotion.from_stage} → {promotion.to_stage} "
                   f"requested by {actor.get_username()}", payload={"promotion": promotion.pk, "rollout": rollout.pk})
        else:
            refused = promotion
    if refused is not None:
        raise PromotionRefused(refused.unmet, refused)
    return promotion


def _decidable(promotion_id: int, actor) -> PromotionRequest:
    """Lock order everywhere: the rollout row first, then its promotion rows (rollback does the same)."""
    policy.check(actor, "promotion.decide")
    rollout_id = PromotionRequest.objects.values_list("rollout_id", flat=True).get(pk=promotion_id)
    Rollout.objects.select_for_update().filter(pk=rollout_id).first()
    promotion = PromotionRequest.objects.select_for_update(of=("self",)).select_related("requested_by").get(pk=promotion_id)
    if promotion.status != PromotionStatus.PENDING:
        who = f" by {promotion.decided_by.get_username()}" if promotion.decided_by_id else ""
        raise Conflict(f"promotion #{promotion.pk} is already {promotion.get_status_display().lower()}{who}",
                       status=promotion.status)
    policy.check(actor, "promotion.decide", promotion)  # four eyes
    return promotion


def promotion_approve(*, actor, promotion: PromotionRequest, comment: str = "") -> Rollout:
    """Re-checks every gate inside the transaction that moves the stage. Two approvals of one
    request, or two racing managers, move the rollout exactly one stage: the promotion row and the
    rollout row are locked, the promotion is compare-and-set from pending, and the rollout's move
    is compare-and-set on its revision."""
    with transaction.atomic():
        promotion = _decidable(promotion.pk, actor)
        rollout = _locked(promotion.rollout)
        if rollout.stage_name != promotion.from_stage:
            raise Conflict(f"the rollout is no longer in {promotion.from_stage} (now {rollout.stage_name})")
        report = promotion_gates(rollout=rollout)
        if not report.passed:
            raise PromotionRefused(report.unmet, promotion)
        now = timezone.now()
        claimed = PromotionRequest.objects.filter(pk=promotion.pk, status=PromotionStatus.PENDING).update(
            status=PromotionStatus.APPROVED, decided_by=actor, decided_at=now, comment=comment,
            evidence={**promotion.evidence, "decision": report.evidence},
        )
        if not claimed:
            raise Conflict(f"promotion #{promotion.pk} was decided meanwhile")
        promotion.refresh_from_db()
        audit_record(actor=actor, action="promotion.approved", obj=promotion,
                     after={"from": promotion.from_stage, "to": promotion.to_stage, "comment": comment})
        reason = f"promotion #{promotion.pk} requested by {promotion.requested_by.get_username()}, approved by {actor.get_username()}"
        if comment:
            reason += f": {comment}"
        rollout = _transition(rollout, action=TransitionAction.PROMOTE, actor=actor, reason=reason, to_state=rollout.state,
                              to_index=rollout.stage_index + 1, evidence=report.evidence, promotion=promotion)
        notify(kind="promotion.decided", summary=f"{rollout.version} promoted to {rollout.stage_name} ({rollout.traffic_percent:g} %)",
               payload={"promotion": promotion.pk, "rollout": rollout.pk, "decision": "approved", "stage": rollout.stage_name})
    return rollout


def promotion_reject(*, actor, promotion: PromotionRequest, comment: str = "") -> PromotionRequest:
    with transaction.atomic():
        promotion = _decidable(promotion.pk, actor)
        changed = PromotionRequest.objects.filter(pk=promotion.pk, status=PromotionStatus.PENDING).update(
            status=PromotionStatus.REJECTED, decided_by=actor, decided_at=timezone.now(), comment=comment)
        if not changed:
            raise Conflict(f"promotion #{promotion.pk} was decided meanwhile")
        promotion.refresh_from_db()
        audit_record(actor=actor, action="promotion.rejected", obj=promotion,
                     after={"from": promotion.from_stage, "to": promotion.to_stage, "comment": comment})
        notify(kind="promotion.decided", summary=f"promotion #{promotion.pk} rejected by {actor.get_username()}",
               payload={"promotion": promotion.pk, "rollout": promotion.rollout_id, "decision": "rejected", "comment": comment})
    return promotion


def promotion_cancel(*, actor, promotion: PromotionRequest) -> PromotionRequest:
    """The requester withdraws a pending request."""
    policy.check(actor, "promotion.cancel", promotion)
    with transaction.atomic():
        changed = PromotionRequest.objects.filter(pk=promotion.pk, status=PromotionStatus.PENDING,
                                                  requested_by=actor).update(
            status=PromotionStatus.CANCELLED, decided_at=timezone.now(), comment="withdrawn by the requester")
        if not changed:
            raise Conflict("only the requester withdraws a pending request")
        audit_record(actor=actor, action="promotion.cancelled", obj=promotion)
    promotion.refresh_from_db()
    return promotion
