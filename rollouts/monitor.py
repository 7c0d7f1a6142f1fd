"""Continuous watch of rollouts: roll back a live stage on a significant guardrail breach, complete
a rollout whose last stage has held its stabilization, announce newly flagged shadow segments.
Called by Celery beat and after ingestion."""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from rolloutops.exceptions import Conflict
from rolloutops.notifications import notify

from .gates import current_stage, next_stage, stage_figures
from .guardrails import breaches, describe_breach
from .models import Rollout, RolloutState, StageMode
from .services import rollout_complete, rollout_rollback

log = logging.getLogger("rolloutops.rollouts")


def announce_flagged_segments(rollout: Rollout) -> list[str]:
    """Notify each newly flagged shadow segment once (compare-and-set on the announced list)."""
    from telemetry.selectors import rollout_discrepancy

    flagged = rollout_discrepancy(rollout_id=rollout.pk, stage=rollout.stage_name)["flagged_segments"]
    new = [s for s in flagged if s not in rollout.flagged_notified]
    if not new:
        return []
    announced = sorted(set(rollout.flagged_notified) | set(new))
    with transaction.atomic():
        if not Rollout.objects.filter(pk=rollout.pk, flagged_notified=rollout.flagged_notified).update(flagged_notified=announced):
            return []  # another worker announced them
        notify(kind="segment.flagged", severity="warning",
               summary=f"{rollout.version} in shadow: systematic discrepancy in segment(s) {', '.join(new)}",
               payload={"rollout": rollout.pk, "agent": rollout.agent.slug, "segments": new})
    return new


def warm_shadow_figures(rollout: Rollout) -> None:
    """Compute the shadow figures the rollout page shows, here in the worker, right after a fold:
    they are cached under the fold watermark, so the first viewer does not pay for them."""
    from telemetry.selectors import rollout_discrepancy

    if rollout.stages.filter(mode=StageMode.SHADOW).exists():
        rollout_discrepancy(rollout_id=rollout.pk)


def rollout_watch(*, rollout_id: int) -> str:
    """One look at one rollout. Returns what happened: "rolled_back", "completed" or "ok"."""
    rollout = Rollout.objects.select_related("agent", "version").filter(pk=rollout_id, state=RolloutState.ACTIVE).first()
    if rollout is None:
        return "ok"
    warm_shadow_figures(rollout)
    stage = current_stage(rollout)
    if stage.mode == StageMode.SHADOW:
        announce_flagged_segments(rollout)
        return "ok"
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
    watched = Rollout.objects.filter(state=RolloutState.ACTIVE, mode__in=[StageMode.LIVE, StageMode.SHADOW])
    for rollout_id in watched.values_list("id", flat=True):
        outcome[rollout_watch(rollout_id=rollout_id)] += 1
    return outcome
