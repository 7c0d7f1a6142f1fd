"""The promotion gates and the evidence frozen with every decision (docs/decisions.md)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.utils import timezone

from agents.readiness import version_readiness
from telemetry.selectors import rollout_discrepancy, stage_metrics

from .guardrails import breaches, describe_breach, evaluate_guardrails, unevaluable
from .models import Rollout, RolloutState, RolloutStage, StageMode


@dataclass
class GateReport:
    unmet: list[str]
    evidence: dict = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)  # each gate: name, ok, detail — for pages

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


def current_stage(rollout: Rollout) -> RolloutStage:
    return rollout.stages.get(position=rollout.stage_index)


def next_stage(rollout: Rollout) -> RolloutStage | None:
    return rollout.stages.filter(position=rollout.stage_index + 1).first()


def stage_figures(*, rollout: Rollout, stage: RolloutStage) -> dict:
    """Everything measured about a stage, as plain JSON (for evidence, pages and the API)."""
    metrics = stage_metrics(rollout_id=rollout.pk, stage=stage.name)
    guardrails = evaluate_guardrails(stage=stage, metrics=metrics)
    figures = {
        "stage": stage.name,
        "samples": metrics.agent_events,
        "min_samples": stage.min_samples,
        "pairs": metrics.pairs,
        "errors": metrics.errors,
        "escalations": metrics.escalations,
        "p95_latency_ms": metrics.p95_latency_ms,
        "guardrails": [g.as_dict() for g in guardrails],
        "computed_at": timezone.now().isoformat(),
    }
    if stage.mode == StageMode.SHADOW:
        d = rollout_discrepancy(rollout_id=rollout.pk, stage=stage.name)
        figures["agreement"] = {
            "pairs": d["pairs"], "agreement": d["agreement"], "interval": d["interval"], "kappa": d["kappa"],
            "flagged_segments": d["flagged_segments"], "bar": stage.agreement_bar,
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

    measured = stage_figures(rollout=rollout, stage=stage)
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
        flagged = agreement["flagged_segments"]
        check("segments", not flagged,
              "no segment flagged as a systematic discrepancy" if not flagged
              else f"systematic discrepancy flagged in segment(s): {', '.join(flagged)}")

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
    return GateReport(unmet=unmet, evidence=evidence, checks=checks)


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
