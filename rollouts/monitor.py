"""Continuous watch of live rollouts: roll back on a significant guardrail breach, complete a
rollout whose last stage has held its stabilization. Called by Celery beat and after ingestion."""
from __future__ import annotations

import logging

from django.utils import timezone

from rolloutops.exceptions import Conflict

from .gates import current_stage, next_stage, stage_figures
from .guardrails import breaches, describe_breach
from .models import Rollout, RolloutState, StageMode
from .services import rollout_complete, rollout_rollback

log = logging.getLogger("rolloutops.rollouts")


def rollout_watch(*, rollout_id: int) -> str:
    """One look at one rollout. Returns what happened: "rolled_back", "completed" or "ok"."""
    rollout = Rollout.objects.select_related("agent", "version").filter(pk=rollout_id, state=RolloutState.ACTIVE).first()
    if rollout is None:
        return "ok"
    stage = current_stage(rollout)
    if stage.mode != StageMode.LIVE:
        return "ok"
    measured = stage_figures(rollout=rollout, stage=stage)
    breached = breaches(measured["guardrails"])
    try:
        if breached:
            reason = "automatic rollback: " + "; ".join(describe_breach(g) for g in breached)
            evidence = {"at": timezone.now().isoformat(), "rollout": rollout.pk, "version": str(rollout.version),
                        "stage": measured["figures"], "breached": [g.as_dict() for g in breached]}
            rollout_rollback(actor=None, rollout=rollout, reason=reason, automatic=True, evidence=evidence)
            return "rolled_back"
        elapsed = (timezone.now() - rollout.stage_entered_at).total_seconds()
        samples = measured["metrics"].agent_events
        if next_stage(rollout) is None and elapsed >= stage.min_duration_s and samples >= stage.min_samples:
            rollout_complete(actor=None, rollout=rollout)
            return "completed"
    except Conflict:
        # Someone else moved the rollout between our look and our write; the next look decides.
        return "ok"
    return "ok"


def rollouts_watch_all() -> dict[str, int]:
    outcome = {"rolled_back": 0, "completed": 0, "ok": 0}
    for rollout_id in Rollout.objects.filter(state=RolloutState.ACTIVE, mode=StageMode.LIVE).values_list("id", flat=True):
        outcome[rollout_watch(rollout_id=rollout_id)] += 1
    return outcome
