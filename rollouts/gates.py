"""The promotion gates and the evidence frozen with every decision (docs/decisions.md)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.utils import timezone

from agents.readiness import version_readiness
from telemetry.selectors import rollout_discrepancy, stage_metrics

from . import decisions
from .guardrails import BY_KEY, breaches, budget_shares, describe_breach, evaluate_guardrails, unevaluable
from .models import GuardrailState, Rollout, RolloutState, RolloutStage, StageMode


@dataclass
class GateReport:
    unmet: list[str]
    evidence: dict = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)  # each gate: name, ok, detail — for pages
    # (the fold watermark, events pending the fold) as the stage's figures were read: a page's other
    # panels read their figures under the same watermark, without reading it again.
    fold_state: tuple[datetime | None, int] | None = field(default=None, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return not self.unmet


def human_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


def _loaded_stage(rollout: Rollout, position: int) -> tuple[bool, RolloutStage | None]:
    """(whether the rollout's stages were loaded with it, the stage at `position` among them): a page
    loads them once (rollouts/views.py) rather than once per question asked of them."""
    if "stages" not in getattr(rollout, "_prefetched_objects_cache", {}):
        return False, None
    return True, next((s for s in rollout.stages.all() if s.position == position), None)


def current_stage(rollout: Rollout) -> RolloutStage:
    loaded, stage = _loaded_stage(rollout, rollout.stage_index)
    if not loaded:
        return rollout.stages.get(position=rollout.stage_index)
    if stage is None:
        raise RolloutStage.DoesNotExist(f"rollout #{rollout.pk} has no stage {rollout.stage_index}")
    return stage


def next_stage(rollout: Rollout) -> RolloutStage | None:
    loaded, stage = _loaded_stage(rollout, rollout.stage_index + 1)
    return stage if loaded else rollout.stages.filter(position=rollout.stage_index + 1).first()


def guardrail_look(*, rollout: Rollout, stage: RolloutStage, metrics, now: datetime | None = None,
                   advance: bool = False) -> list:
    """Each guardrail's verdict from its sequential test (rollouts/decisions.py). The watch advances
    the test (`advance=True`: the new state is kept, by compare-and-set, so two looks never count the
    same events twice); gates, the API and the pages look without keeping anything."""
    if stage.mode != StageMode.LIVE:
        return []
    now = now or timezone.now()
    plan = stage.guardrails or {}
    alphas = budget_shares(list(rollout.stages.all()), rollout.error_budget)
    row = GuardrailState.objects.filter(rollout_id=rollout.pk).first()
    state = decisions.from_json(row.state) if row else None
    tested = [key for key in alphas if key in plan]
    counts = {key: BY_KEY[key].counts(metrics) for key in tested}
    nulls = {key: BY_KEY[key].null(float(plan[key]), plan) for key in tested}
    state, evidence = decisions.look(state, stage=stage.name, now_s=now.timestamp(), counts=counts, nulls=nulls)
    if advance:
        state = decisions.traced(state, evidence, now_s=now.timestamp())
        data = decisions.to_json(state)
        if row is None:
            GuardrailState.objects.get_or_create(rollout_id=rollout.pk, defaults={"state": data})
        else:
            GuardrailState.objects.filter(rollout_id=rollout.pk, version=row.version).update(
                state=data, version=row.version + 1, updated_at=now)
    return evaluate_guardrails(stage=stage, metrics=metrics, evidence={k: float(v) for k, v in evidence.items()},
                               alphas=alphas, error_budget=rollout.error_budget)


def segment_verdict(*, rollout: Rollout, stage: RolloutStage, discrepancy: dict, now: datetime) -> dict:
    """Shadow segments are flagged once, when the stage reaches its stabilization and its sample
    minimum: a single look, so the Holm correction's 5 % holds (docs/decisions.md, "Segments"). Before
    that the flags are provisional: shown, never gating, never notified. Whoever computes the verdict
    first (the watch, a gate, a page) keeps it, by compare-and-set, so a later look cannot judge again."""
    row = GuardrailState.objects.filter(rollout_id=rollout.pk).first()
    kept = (row.segments if row else {}).get(stage.name)
    if kept:
        return {**kept, "final": True}
    elapsed = (now - rollout.stage_entered_at).total_seconds()
    due = elapsed >= stage.min_duration_s and discrepancy["pairs"] >= stage.min_samples
    verdict = {"flagged": list(discrepancy["flagged_segments"]), "pairs": discrepancy["pairs"],
               "decided_at": now.isoformat() if due else None, "final": due}
    if due:
        kept_now = {"flagged": verdict["flagged"], "pairs": verdict["pairs"], "decided_at": verdict["decided_at"]}
        if row is None:
            row, created = GuardrailState.objects.get_or_create(rollout_id=rollout.pk, defaults={"segments": {stage.name: kept_now}})
            if created:
                return verdict
        segments = dict(row.segments)
        if stage.name in segments:
            return {**segments[stage.name], "final": True}
        segments[stage.name] = kept_now
        if not GuardrailState.objects.filter(rollout_id=rollout.pk, version=row.version).update(
                segments=segments, version=row.version + 1):
            fresh = GuardrailState.objects.get(rollout_id=rollout.pk).segments.get(stage.name)
            if fresh:
                return {**fresh, "final": True}
    return verdict


def stage_figures(*, rollout: Rollout, stage: RolloutStage, advance: bool = False, now: datetime | None = None) -> dict:
    """Everything measured about a stage, as plain JSON (for evidence, pages and the API)."""
    now = now or timezone.now()
    metrics = stage_metrics(rollout_id=rollout.pk, stage=stage.name)
    guardrails = guardrail_look(rollout=rollout, stage=stage, metrics=metrics, now=now, advance=advance)
    figures = {
        "stage": stage.name,
        "samples": metrics.agent_events,
        "min_samples": stage.min_samples,
        "pairs": metrics.pairs,
        "errors": metrics.errors,
        "escalations": metrics.escalations,
        "p95_latency_ms": metrics.p95_latency_ms,
        "error_budget": rollout.error_budget,
        "guardrails": [g.as_dict() for g in guardrails],
        "computed_at": now.isoformat(),
    }
    if stage.mode == StageMode.SHADOW:
        d = rollout_discrepancy(rollout_id=rollout.pk, stage=stage.name, watermark=metrics.computed_at,
                                pending=metrics.pending_events)
        verdict = segment_verdict(rollout=rollout, stage=stage, discrepancy=d, now=now)
        figures["agreement"] = {
            "pairs": d["pairs"], "agreement": d["agreement"], "interval": d["interval"], "kappa": d["kappa"],
            "flagged_segments": verdict["flagged"] if verdict["final"] else [],
            "provisional_segments": [] if verdict["final"] else verdict["flagged"],
            "segments_decided_at": verdict["decided_at"], "bar": stage.agreement_bar,
        }
    return {"figures": figures, "metrics": metrics, "guardrails": guardrails}


def promotion_gates(*, rollout: Rollout, now: datetime | None = None) -> GateReport:
    """Every unmet condition for moving to the next stage (approval itself aside)."""
    now = now or timezone.now()
    unmet: list[str] = []
    checks: list[dict] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append({"name": name, "ok": ok, "detail": detail})
        if not ok:
            unmet.append(detail)

    if rollout.state != RolloutState.ACTIVE:
        check("state", False, f"the rollout is {rollout.get_state_display().lower()}, not active")
    stage = current_stage(rollout)
    target = next_stage(rollout)
    if target is None:
        check("next stage", False, f"{stage.name} is the last stage: the rollout completes once it has stabilized")

    readiness = version_readiness(version=rollout.version)
    if readiness.ready:
        check("readiness", True, f"{rollout.version} is ready on all five dimensions")
    else:
        check("readiness", False, f"{rollout.version} is not ready: " + "; ".join(readiness.failing))

    measured = stage_figures(rollout=rollout, stage=stage, now=now)
    figures, metrics, guardrails = measured["figures"], measured["metrics"], measured["guardrails"]
    entered = rollout.stage_entered_at
    elapsed = (now - entered).total_seconds()
    if stage.min_duration_s:
        ok = elapsed >= stage.min_duration_s
        check("stabilization", ok, f"stabilization: {human_duration(elapsed)} of {human_duration(stage.min_duration_s)} elapsed in {stage.name}")
    if stage.min_samples:
        count = metrics.pairs if stage.mode == StageMode.SHADOW else metrics.agent_events
        unit = "pairs" if stage.mode == StageMode.SHADOW else "samples"
        check("samples", count >= stage.min_samples, f"{unit}: {count} of {stage.min_samples} in {stage.name}")
    breached = breaches(guardrails)
    if stage.mode == StageMode.LIVE:
        blind = unevaluable(guardrails)
        if breached:
            for g in breached:
                check("guardrails", False, f"guardrail breached: {describe_breach(g)}")
        elif blind:
            # "No data" never satisfies a gate (docs/decisions.md).
            check("guardrails", False, "guardrails cannot be evaluated yet: no data for "
                  + ", ".join(g.label for g in blind))
        else:
            check("guardrails", True, "guardrails healthy")
    if stage.mode == StageMode.SHADOW:
        agreement = figures["agreement"]
        bar = stage.agreement_bar or 0.0
        if not bar:
            check("agreement", True, "agreement: this plan sets no bar for the shadow stage")
        elif not agreement["pairs"]:
            check("agreement", False, f"agreement: no data (no agent/human pairs yet; bar {bar:.0%})")
        else:
            low = agreement["interval"][0]
            check("agreement", low >= bar,
                  f"agreement: Wilson 95 % lower bound {low:.1%} vs bar {bar:.0%} over {agreement['pairs']} pairs")
        flagged, provisional = agreement["flagged_segments"], agreement["provisional_segments"]
        if flagged:
            check("segments", False, f"systematic discrepancy flagged in segment(s): {', '.join(flagged)}")
        elif agreement["segments_decided_at"]:
            check("segments", True, "no segment flagged as a systematic discrepancy")
        else:
            # Segments are judged once, when stabilization and samples are reached (docs/decisions.md).
            check("segments", False, "segments are judged once the stage has stabilized on its samples"
                  + (f" (provisionally below the rest: {', '.join(provisional)})" if provisional else ""))

    evidence = {
        "at": now.isoformat(),
        "rollout": rollout.pk,
        "version": str(rollout.version),
        "from_stage": stage.name,
        "to_stage": target.name if target else None,
        "time_in_stage_s": int(elapsed),
        "readiness": readiness.as_dict(),
        "stage": figures,
        "checks": checks,
    }
    return GateReport(unmet=unmet, evidence=evidence, checks=checks,
                      fold_state=(metrics.computed_at, metrics.pending_events))


def rollout_evidence(*, rollout: Rollout, reason: str = "") -> dict:
    """Evidence frozen with a rollback or pause: the stage's figures as they were."""
    stage = current_stage(rollout)
    figures = stage_figures(rollout=rollout, stage=stage)["figures"]
    return {
        "at": timezone.now().isoformat(),
        "rollout": rollout.pk,
        "version": str(rollout.version),
        "stage": figures,
        "readiness": version_readiness(version=rollout.version).as_dict(),
        "reason": reason,
    }


def report_as_dict(report: GateReport) -> dict:
    return asdict(report)
