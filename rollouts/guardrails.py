"""Guardrails of a live stage: each metric against its threshold with an anytime-valid test.

A breach is only declared when the mixture SPRT in telemetry.statistics crosses its boundary,
so the beat task may look every 30 s without inflating false rollbacks (docs/architecture.md, "Where each rule lives")."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from telemetry import statistics

from .models import StageMode

ALPHA = 0.05
# The human workflow's observed error rate replaces the plan's baseline once it rests on enough events.
MIN_HUMAN_EVENTS_FOR_BASELINE = 200

HEALTHY, WATCH, BREACHED, NO_DATA = "healthy", "watch", "breached", "no data"


@dataclass(frozen=True)
class GuardrailResult:
    name: str
    label: str
    value: float | None
    threshold: float
    verdict: str  # healthy | watch (above the threshold, not yet significant) | breached | no data
    n: int
    statistic: float | None
    boundary: float | None
    method: str
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _rate_guardrail(name, label, *, events, n, threshold, value_fmt=None, detail="") -> GuardrailResult:
    if n == 0:
        return GuardrailResult(name, label, None, threshold, NO_DATA, 0, None, None, "", detail)
    test = statistics.rate_exceeds(events=events, n=n, threshold=threshold, alpha=ALPHA)
    rate = events / n
    verdict = BREACHED if test.breached else (WATCH if rate > threshold else HEALTHY)
    return GuardrailResult(name, label, rate, threshold, verdict, n, test.statistic, test.boundary, test.method, detail)


def evaluate_guardrails(*, stage, metrics) -> list[GuardrailResult]:
    """`stage` is a RolloutStage, `metrics` a telemetry StageMetrics for it."""
    if stage.mode != StageMode.LIVE:
        return []
    g = stage.guardrails or {}
    n = metrics.agent_events
    results: list[GuardrailResult] = []
    if "max_error_rate" in g:
        results.append(_rate_guardrail("max_error_rate", "Error rate", events=metrics.errors, n=n,
                                       threshold=float(g["max_error_rate"])))
    if "max_escalation_rate" in g:
        results.append(_rate_guardrail("max_escalation_rate", "Escalation rate", events=metrics.escalations, n=n,
                                       threshold=float(g["max_escalation_rate"])))
    if "max_p95_latency_ms" in g:
        limit = float(g["max_p95_latency_ms"])
        timed, over = metrics.candidate.timed, metrics.candidate.slow
        if timed == 0:
            results.append(GuardrailResult("max_p95_latency_ms", "p95 latency (ms)", None, limit, NO_DATA, 0, None, None, ""))
        else:
            # p95 exceeds the limit exactly when more than 5 % of requests exceed it; `slow` is
            # counted against this stage's limit at ingestion, so the count is exact at any limit.
            test = statistics.p95_exceeds(over_threshold=over, n=timed, alpha=ALPHA)
            p95 = metrics.p95_latency_ms
            verdict = BREACHED if test.breached else (WATCH if over / timed > 0.05 else HEALTHY)
            results.append(GuardrailResult(
                "max_p95_latency_ms", "p95 latency (ms)", p95, limit, verdict, timed, test.statistic, test.boundary,
                test.method, f"{over} of {timed} requests above {limit:g} ms (p95 breaches when > 5 %)",
            ))
    if "max_disagreement_rate" in g:
        results.append(_rate_guardrail("max_disagreement_rate", "Disagreement with humans",
                                       events=metrics.pairs - metrics.agreements, n=metrics.pairs,
                                       threshold=float(g["max_disagreement_rate"]),
                                       detail="only requests a human also decided"))
    if "baseline_error_rate" in g:
        baseline = float(g["baseline_error_rate"])
        source = "the plan's baseline"
        control = metrics.control
        observed = control.errors / control.requests if control.requests else None
        if control.requests >= MIN_HUMAN_EVENTS_FOR_BASELINE and 0 < observed < 1:
            baseline = observed
            source = f"the incumbent's observed rate over {control.requests} concurrent requests"
        elif control.requests >= MIN_HUMAN_EVENTS_FOR_BASELINE:
            # A rate of exactly 0 (or 1) cannot be tested against: keep the plan's baseline.
            source = (f"the plan's baseline (the incumbent's observed rate, {observed:.0%} over "
                      f"{control.requests} requests, cannot serve as one)")
        results.append(_rate_guardrail("baseline_error_rate", "Error rate vs human baseline", events=metrics.errors,
                                       n=n, threshold=baseline, detail=f"baseline: {source}"))
    return results


def breaches(results: list[GuardrailResult]) -> list[GuardrailResult]:
    return [r for r in results if r.verdict == BREACHED]


# Guardrails that only apply where their data exists: disagreement needs human labels of the
# agent's own decisions, which a live stage may never get.
OPTIONAL = frozenset({"max_disagreement_rate"})


def unevaluable(results: list[GuardrailResult]) -> list[GuardrailResult]:
    """Guardrails a live stage needs but cannot evaluate yet: "no data" never reads as healthy."""
    return [r for r in results if r.verdict == NO_DATA and r.name not in OPTIONAL]


def describe_breach(result: GuardrailResult) -> str:
    value = "—" if result.value is None else (f"{result.value:.1%}" if result.value <= 1 and "rate" in result.name else f"{result.value:g}")
    threshold = f"{result.threshold:.1%}" if "rate" in result.name else f"{result.threshold:g}"
    return (f"{result.label} {value} over {threshold} after {result.n} requests "
            f"({result.method}: log-LR {result.statistic:.2f} ≥ {result.boundary:.2f})")
