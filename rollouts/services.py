"""Writes to rollouts: start, edit the plan, pause, resume, roll back, complete.
Promotions (request, approve, reject) live in promotions.py; both go through `_transition`."""
from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import Agent, ProductionChangeKind
from agents.services import production_change, production_previous
from rolloutops import policy
from rolloutops.audit import audit_record
from rolloutops.exceptions import Conflict, Invalid
from rolloutops.notifications import notify
from telemetry.periods import traffic_period_record

from . import stages as stage_rules
from .gates import rollout_evidence
from .models import (
    DEFAULT_ERROR_BUDGET,
    PromotionRequest,
    PromotionStatus,
    Rollout,
    RolloutStage,
    RolloutState,
    StageMode,
    StageTransition,
    TransitionAction,
)
from .routing import routing_invalidate

OPEN_STATES = (RolloutState.ACTIVE, RolloutState.PAUSED)


def _record_routing(rollout: Rollout, at) -> None:
    """Tell telemetry who handles the agent's traffic from `at` on (docs/architecture.md, "Events"):
    while the rollout is open, its candidate and incumbent by its stage; once it ended, the incumbent."""
    if rollout.state in OPEN_STATES:
        stage = rollout.stages.get(position=rollout.stage_index)
        limit = (stage.guardrails or {}).get("max_p95_latency_ms")
        traffic_period_record(
            agent_id=rollout.agent_id, at=at, rollout_id=rollout.pk, stage=rollout.stage_name, mode=rollout.mode,
            active=rollout.state == RolloutState.ACTIVE, traffic_percent=rollout.traffic_percent, salt=rollout.salt,
            candidate_version_id=rollout.version_id, incumbent_version_id=rollout.incumbent_version_id,
            latency_limit_ms=float(limit) if limit is not None else None,
        )
    else:
        incumbent = rollout.version_id if rollout.state == RolloutState.COMPLETED else rollout.incumbent_version_id
        traffic_period_record(agent_id=rollout.agent_id, at=at, rollout_id=None, incumbent_version_id=incumbent)

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
    if rollout.state in OPEN_STATES or from_state in OPEN_STATES:
        _record_routing(rollout, now)
    routing_invalidate(rollout.agent.slug)
    return rollout


def _error_budget(value) -> float:
    if value is None:
        return DEFAULT_ERROR_BUDGET
    try:
        budget = float(value)
    except (TypeError, ValueError):
        raise Invalid("error_budget: a probability, e.g. 0.01") from None
    if not 0 < budget < 0.5:
        raise Invalid(f"error_budget: a probability strictly between 0 and 0.5 (got {budget:g}); it is the chance "
                      "that a healthy candidate is falsely rolled back over the whole plan")
    return budget


def rollout_start(*, actor, version, plan: list[dict] | None = None, reason: str = "",
                  error_budget: float | None = None) -> Rollout:
    """Open a rollout of `version` (the candidate) in staging with the given plan (the default plan
    otherwise), against the agent's incumbent of this moment. Routing does not change: staging
    sends no traffic to the candidate."""
    policy.check(actor, "rollout.start")
    stages = stage_rules.parse_plan(plan)
    budget = _error_budget(error_budget)
    now = timezone.now()
    agent = Agent.objects.select_related("production_version").get(pk=version.agent_id)  # today's incumbent, fresh
    if agent.production_version_id == version.pk:
        raise Conflict(f"{version} is already in production: roll out a new version")
    try:
        with transaction.atomic():
            rollout = Rollout.objects.create(
                agent=agent, version=version, incumbent_version_id=agent.production_version_id,
                error_budget=budget, state=RolloutState.ACTIVE, stage_index=0,
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
                         after={"version": str(version), "plan": [s.as_dict() for s in stages],
                                "incumbent": agent.in_production_label, "error_budget": budget})
            _record_routing(rollout, now)
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
    """The candidate becomes the incumbent: it keeps all traffic, and the next rollout compares with it."""
    policy.check(actor, "rollout.complete")
    with transaction.atomic():
        rollout = _locked(rollout)
        to_state = _check_allowed(rollout, TransitionAction.COMPLETE)
        if rollout.stages.filter(position__gt=rollout.stage_index).exists():
            raise Conflict("only a rollout at its last stage completes")
        rollout = _transition(rollout, action=TransitionAction.COMPLETE, actor=actor, reason=reason, to_state=to_state,
                              evidence=rollout_evidence(rollout=rollout, reason=reason), automatic=actor is None)
        production_change(actor=actor, agent=rollout.agent, to_version=rollout.version,
                          kind=ProductionChangeKind.COMPLETED, rollout_id=rollout.pk, at=rollout.ended_at,
                          reason=f"rollout #{rollout.pk} completed: {reason}")
        return rollout


def production_revert(*, actor, agent, reason: str):
    """Production back to the previous incumbent, at once, for the day a completed version turns out
    bad. Refused while a rollout compares a candidate with today's incumbent (shadow or live): roll
    that one back first. A rollout still in staging follows the new incumbent."""
    policy.check(actor, "production.revert")
    reason = _require_reason(reason)
    with transaction.atomic():
        open_rollout = (Rollout.objects.select_for_update(of=("self",)).select_related("agent", "version")
                        .filter(agent=agent, state__in=OPEN_STATES).first())
        if open_rollout is not None and open_rollout.mode != StageMode.OFF:
            raise Conflict(f"rollout #{open_rollout.pk} of {open_rollout.version} is in {open_rollout.stage_name} "
                           "against today's incumbent: roll it back first, then revert", rollout=open_rollout.pk)
        previous = production_previous(agent=agent)
        if previous is None or agent.production_version_id is None:
            raise Conflict(f"{agent.slug} has no earlier incumbent to revert to (in production: "
                           f"{agent.in_production_label})")
        current_id, back_to = agent.production_version_id, previous.from_version
        completed = (Rollout.objects.select_for_update(of=("self",)).select_related("agent", "version")
                     .filter(agent=agent, version_id=current_id, state=RolloutState.COMPLETED)
                     .order_by("-ended_at", "-id").first())
        if completed is not None:
            _transition(completed, action=TransitionAction.REVERT, actor=actor, reason=reason, to_state=RolloutState.REVERTED,
                        evidence={"at": timezone.now().isoformat(), "reverted_to": back_to.version if back_to else "humans"})
        change = production_change(actor=actor, agent=agent, to_version=back_to, kind=ProductionChangeKind.REVERTED,
                                   rollout_id=completed.pk if completed else None, reason=reason)
        now = change.at
        if open_rollout is not None:
            # Still in staging: it will compare its candidate with the incumbent it now has.
            Rollout.objects.filter(pk=open_rollout.pk).update(incumbent_version=back_to, updated_at=now)
            open_rollout.incumbent_version = back_to
            _record_routing(open_rollout, now)
        else:
            traffic_period_record(agent_id=agent.pk, at=now, rollout_id=None,
                                  incumbent_version_id=back_to.pk if back_to else None)
        routing_invalidate(agent.slug)
    log.warning("production reverted", extra={"agent": agent.slug, "to": back_to.version if back_to else "humans"})
    return change
