"""Writes to rollouts: start, edit the plan, pause, resume, roll back, complete.
Promotions (request, approve, reject) live in promotions.py; both go through `_transition`."""
from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from rolloutops import policy
from rolloutops.audit import audit_record
from rolloutops.exceptions import Conflict, Invalid
from rolloutops.notifications import notify

from . import stages as stage_rules
from .gates import rollout_evidence
from .models import (
    PromotionRequest,
    PromotionStatus,
    Rollout,
    RolloutStage,
    RolloutState,
    StageTransition,
    TransitionAction,
)
from .routing import routing_invalidate

log = logging.getLogger("rolloutops.rollouts")


def _snapshot(rollout: Rollout) -> dict:
    return {"state": rollout.state, "stage": rollout.stage_name, "traffic_percent": rollout.traffic_percent}


def _locked(rollout: Rollout) -> Rollout:
    """The row that guards every transition, locked until the transaction ends (PostgreSQL);
    SQLite runs writers one at a time already."""
    return Rollout.objects.select_for_update(of=("self",)).select_related("agent", "version").get(pk=rollout.pk)


def _transition(rollout: Rollout, *, action: str, actor, reason: str, to_state: str, to_index: int | None = None,
                evidence: dict | None = None, automatic: bool = False, promotion: PromotionRequest | None = None) -> Rollout:
    """Move a locked rollout: compare-and-set on its revision, a history row, an audit entry."""
    now = timezone.now()
    before = _snapshot(rollout)
    from_stage, from_state = rollout.stage_name, rollout.state
    fields = {"state": to_state, "updated_at": now, "revision": rollout.revision + 1}
    if to_index is not None and to_index != rollout.stage_index:
        stage = rollout.stages.get(position=to_index)
        fields.update(stage_index=to_index, stage_name=stage.name, mode=stage.mode,
                      traffic_percent=stage.traffic_percent, stage_entered_at=now)
        RolloutStage.objects.filter(pk=stage.pk).update(entered_at=now, entered_by=actor if actor else None)
    if to_state == RolloutState.ROLLED_BACK:
        fields.update(traffic_percent=0, ended_at=now, end_reason=reason)
    if to_state == RolloutState.COMPLETED:
        fields.update(ended_at=now)
    changed = Rollout.objects.filter(pk=rollout.pk, revision=rollout.revision, state=from_state).update(**fields)
    if not changed:
        raise Conflict("the rollout changed meanwhile; reload and try again")
    for key, value in fields.items():
        setattr(rollout, key, value)
    StageTransition.objects.create(
        rollout=rollout, from_stage=from_stage, to_stage=rollout.stage_name, from_state=from_state, to_state=to_state,
        traffic_percent=rollout.traffic_percent, action=action, actor=actor if actor else None, automatic=automatic,
        reason=reason, evidence=evidence or {}, promotion=promotion, at=now,
    )
    audit_record(actor=actor, action=f"rollout.{action}", obj=rollout, before=before,
                 after={**_snapshot(rollout), "reason": reason, "automatic": automatic})
    routing_invalidate(rollout.agent.slug)
    return rollout


def rollout_start(*, actor, version, plan: list[dict] | None = None, reason: str = "") -> Rollout:
    """Open a rollout in staging with the given plan (the default plan otherwise)."""
    policy.check(actor, "rollout.start")
    stages = stage_rules.parse_plan(plan)
    now = timezone.now()
    try:
        with transaction.atomic():
            rollout = Rollout.objects.create(
                agent=version.agent, version=version, state=RolloutState.ACTIVE, stage_index=0,
                stage_name=stages[0].name, mode=stages[0].mode, traffic_percent=0, stage_entered_at=now,
                started_by=actor, created_at=now, updated_at=now,
            )
            RolloutStage.objects.bulk_create([
                RolloutStage(rollout=rollout, position=i, name=s.name, mode=s.mode, traffic_percent=s.traffic_percent,
                             min_duration_s=s.min_duration_s, min_samples=s.min_samples, agreement_bar=s.agreement_bar,
                             guardrails=s.guardrails, inconclusive_after_s=s.inconclusive_after_s,
                             entered_at=now if i == 0 else None,
                             entered_by=actor if i == 0 else None)
                for i, s in enumerate(stages)
            ])
            StageTransition.objects.create(rollout=rollout, from_stage="", to_stage=stages[0].name, from_state="",
                                           to_state=RolloutState.ACTIVE, action=TransitionAction.START, actor=actor,
                                           reason=reason or "rollout started", at=now)
            audit_record(actor=actor, action="rollout.started", obj=rollout,
                         after={"version": str(version), "plan": [s.as_dict() for s in stages]})
            routing_invalidate(version.agent.slug)
    except IntegrityError as exc:
        open_rollout = Rollout.objects.filter(agent=version.agent, state__in=[RolloutState.ACTIVE, RolloutState.PAUSED]).first()
        if open_rollout is not None:
            raise Conflict(f"{version.agent.slug} already has an open rollout (#{open_rollout.pk}, {open_rollout.stage_name}); "
                           "complete or roll it back first", rollout=open_rollout.pk) from exc
        raise
    return rollout


def rollout_plan_update(*, actor, rollout: Rollout, plan: list[dict]) -> Rollout:
    """Plans are editable until the rollout leaves staging."""
    policy.check(actor, "rollout.plan")
    stages = stage_rules.parse_plan(plan)
    with transaction.atomic():
        rollout = _locked(rollout)
        if rollout.stage_index != 0 or rollout.state != RolloutState.ACTIVE:
            raise Conflict("the plan can only be edited while the rollout is in staging")
        before = [s.name for s in rollout.stages.all()]
        rollout.stages.all().delete()
        RolloutStage.objects.bulk_create([
            RolloutStage(rollout=rollout, position=i, name=s.name, mode=s.mode, traffic_percent=s.traffic_percent,
                         min_duration_s=s.min_duration_s, min_samples=s.min_samples, agreement_bar=s.agreement_bar,
                         guardrails=s.guardrails, inconclusive_after_s=s.inconclusive_after_s,
                         entered_at=rollout.stage_entered_at if i == 0 else None)
            for i, s in enumerate(stages)
        ])
        audit_record(actor=actor, action="rollout.plan_updated", obj=rollout, before={"stages": before},
                     after={"plan": [s.as_dict() for s in stages]})
    return rollout


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("a reason is required")
    return reason


def _check_allowed(rollout: Rollout, action: str) -> str:
    to_state = stage_rules.next_state(rollout.state, action)
    if to_state is None:
        raise Conflict(f"cannot {action} a rollout that is {rollout.get_state_display().lower()}")
    return to_state


def rollout_pause(*, actor, rollout: Rollout, reason: str, automatic: bool = False,
                  evidence: dict | None = None) -> Rollout:
    """By hand, or automatically as *inconclusive* (the watch heard nothing, or could not evaluate
    the guardrails): the incumbent takes all traffic until someone resumes."""
    policy.check(actor, "rollout.pause")
    reason = _require_reason(reason)
    with transaction.atomic():
        rollout = _locked(rollout)
        to_state = _check_allowed(rollout, TransitionAction.PAUSE)
        rollout = _transition(rollout, action=TransitionAction.PAUSE, actor=actor, reason=reason, to_state=to_state,
                              evidence=evidence or rollout_evidence(rollout=rollout, reason=reason),
                              automatic=automatic)
        if automatic:
            notify(kind="rollout.inconclusive", severity="warning",
                   summary=f"{rollout.version} paused in {rollout.stage_name}: {reason}",
                   payload={"rollout": rollout.pk, "agent": rollout.agent.slug, "version": rollout.version.version,
                            "stage": rollout.stage_name, "reason": reason})
        return rollout


def rollout_resume(*, actor, rollout: Rollout, reason: str) -> Rollout:
    """Stabilization restarts: time spent paused proves nothing about the agent."""
    policy.check(actor, "rollout.resume")
    reason = _require_reason(reason)
    with transaction.atomic():
        rollout = _locked(rollout)
        to_state = _check_allowed(rollout, TransitionAction.RESUME)
        rollout = _transition(rollout, action=TransitionAction.RESUME, actor=actor, reason=reason, to_state=to_state)
        now = timezone.now()
        Rollout.objects.filter(pk=rollout.pk).update(stage_entered_at=now)
        rollout.stage_entered_at = now
        return rollout


def rollout_rollback(*, actor, rollout: Rollout, reason: str, automatic: bool = False, evidence: dict | None = None) -> Rollout:
    """Traffic to the agent goes to 0 % at once; pending promotions are cancelled."""
    policy.check(actor, "rollout.rollback")
    reason = _require_reason(reason)
    with transaction.atomic():
        rollout = _locked(rollout)
        to_state = _check_allowed(rollout, TransitionAction.ROLLBACK)
        evidence = evidence or rollout_evidence(rollout=rollout, reason=reason)
        rollout = _transition(rollout, action=TransitionAction.ROLLBACK, actor=actor, reason=reason, to_state=to_state,
                              evidence=evidence, automatic=automatic)
        PromotionRequest.objects.filter(rollout=rollout, status=PromotionStatus.PENDING).update(
            status=PromotionStatus.CANCELLED, decided_at=timezone.now(), comment="rollout rolled back")
        notify(kind="rollout.rolled_back", severity="critical",
               summary=f"{rollout.version} rolled back from {rollout.stage_name}: {reason}",
               payload={"rollout": rollout.pk, "agent": rollout.agent.slug, "version": rollout.version.version,
                        "stage": rollout.stage_name, "automatic": automatic, "reason": reason, "evidence": evidence})
    log.warning("rollout rolled back", extra={"rollout": rollout.pk, "automatic": automatic, "reason": reason})
    return rollout


def rollout_complete(*, actor, rollout: Rollout, reason: str = "full traffic held its stabilization") -> Rollout:
    policy.check(actor, "rollout.complete")
    with transaction.atomic():
        rollout = _locked(rollout)
        to_state = _check_allowed(rollout, TransitionAction.COMPLETE)
        if rollout.stages.filter(position__gt=rollout.stage_index).exists():
            raise Conflict("only a rollout at its last stage completes")
        return _transition(rollout, action=TransitionAction.COMPLETE, actor=actor, reason=reason, to_state=to_state,
                           evidence=rollout_evidence(rollout=rollout, reason=reason), automatic=actor is None)
