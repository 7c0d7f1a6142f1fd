"""Continuous watch of rollouts: roll back a live stage on a significant guardrail breach, complete
a rollout whose last stage has held its stabilization, announce newly flagged shadow segments.
Called by Celery beat and after ingestion."""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from rolloutops.exceptions import Conflict
from rolloutops.notifications import notify
from telemetry.selectors import rollout_discrepancy

from .gates import current_stage, next_stage, stage_figures
from .guardrails import breaches, describe_breach, unevaluable
from .models import Rollout, RolloutState, StageMode
from .services import rollout_complete, rollout_pause, rollout_rollback

log = logging.getLogger("rolloutops.rollouts")


def announce_flagged_segments(rollout: Rollout, flagged: list[str]) -> list[str]:
    """Notify each flagged shadow segment once (compare-and-set on the announced list). Only final
    flags: provisional ones are shown, never announced (docs/decisions.md, "Segments")."""
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
    if rollout.stages.filter(mode=StageMode.SHADOW).exists():
        rollout_discrepancy(rollout_id=rollout.pk)


INCONCLUSIVE = "inconclusive: "


def _silence_s(rollout: Rollout, metrics, now) -> float:
    """Seconds since the stage last heard from the agent (since it was entered, if never)."""
    last = metrics.last_agent_event_at
    since = max(rollout.stage_entered_at, last) if last else rollout.stage_entered_at
    return (now - since).total_seconds()


def rollout_watch(*, rollout_id: int) -> str:
    """One look at one rollout. Returns what happened: "rolled_back", "paused", "completed" or "ok"."""
    rollout = Rollout.objects.select_related("agent", "version").filter(pk=rollout_id, state=RolloutState.ACTIVE).first()
    if rollout is None:
        return "ok"
    warm_shadow_figures(rollout)
    stage = current_stage(rollout)
    now = timezone.now()
    if stage.mode == StageMode.SHADOW:
        figures = stage_figures(rollout=rollout, stage=stage, now=now)["figures"]
        announce_flagged_segments(rollout, figures["agreement"]["flagged_segments"])
        return "ok"
    if stage.mode != StageMode.LIVE:
        return "ok"
    measured = stage_figures(rollout=rollout, stage=stage, advance=True, now=now)
    metrics = measured["metrics"]
    breached = breaches(measured["guardrails"])
    elapsed = (now - rollout.stage_entered_at).total_seconds()
    try:
        if breached:
            reason = "automatic rollback: " + "; ".join(describe_breach(g) for g in breached)
            evidence = {"at": now.isoformat(), "rollout": rollout.pk, "version": str(rollout.version),
                        "stage": measured["figures"], "breached": [g.as_dict() for g in breached]}
            rollout_rollback(actor=None, rollout=rollout, reason=reason, automatic=True, evidence=evidence)
            return "rolled_back"
        # Silence is not health (docs/decisions.md): a live stage that hears nothing from the
        # agent, or cannot evaluate a guardrail it needs, stops and says so.
        limit = stage.inconclusive_after_s
        if limit:
            silent = _silence_s(rollout, metrics, now)
            blind = unevaluable(measured["guardrails"])
            reason = None
            if silent >= limit:
                reason = (f"{INCONCLUSIVE}no agent events in {stage.name} for {int(silent)} s "
                          f"(the plan allows {limit} s); the guardrails cannot tell health from silence")
            elif blind and elapsed >= limit:
                reason = (f"{INCONCLUSIVE}after {int(elapsed)} s in {stage.name} these guardrails still have no "
                          f"data: {', '.join(g.label for g in blind)}")
            if reason:
                evidence = {"at": now.isoformat(), "rollout": rollout.pk, "version": str(rollout.version),
                            "stage": measured["figures"], "inconclusive": True}
                rollout_pause(actor=None, rollout=rollout, reason=reason, automatic=True, evidence=evidence)
                return "paused"
        if (next_stage(rollout) is None and elapsed >= stage.min_duration_s and metrics.agent_events >= stage.min_samples
                and metrics.agent_events > 0 and not unevaluable(measured["guardrails"])):
            rollout_complete(actor=None, rollout=rollout)
            return "completed"
    except Conflict:
        # Someone else moved the rollout between our look and our write; the next look decides.
        return "ok"
    return "ok"


def _pause_failed_watch(rollout_id: int, exc: Exception) -> str:
    """An evaluation that fails is itself a finding: the rollout stops, inconclusive, with the error
    named, rather than running unwatched. Evidence is the error only: the figures are what failed."""
    reason = f"{INCONCLUSIVE}the guardrails could not be evaluated ({type(exc).__name__}: {str(exc)[:300]})"
    try:
        rollout = Rollout.objects.select_related("agent", "version").get(pk=rollout_id)
        rollout_pause(actor=None, rollout=rollout, reason=reason, automatic=True,
                      evidence={"at": timezone.now().isoformat(), "rollout": rollout_id, "inconclusive": True,
                                "error": f"{type(exc).__name__}: {exc}"[:2000]})
    except Exception:  # noqa: BLE001 - the watch of the other rollouts must go on
        log.exception("could not pause a rollout whose watch failed", extra={"rollout": rollout_id})
        return "error"
    return "paused"


def rollouts_watch_all() -> dict[str, int]:
    """One look at every active rollout, each on its own: an error on one is logged, pauses that one
    as inconclusive, and never stops the others from being watched."""
    outcome = {"rolled_back": 0, "paused": 0, "completed": 0, "ok": 0, "errors": 0}
    watched = Rollout.objects.filter(state=RolloutState.ACTIVE, mode__in=[StageMode.LIVE, StageMode.SHADOW])
    for rollout_id in list(watched.values_list("id", flat=True)):
        try:
            outcome[rollout_watch(rollout_id=rollout_id)] += 1
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            log.exception("guardrail watch failed", extra={"rollout": rollout_id})
            outcome["errors"] += 1
            if _pause_failed_watch(rollout_id, exc) == "paused":
                outcome["paused"] += 1
    return outcome
