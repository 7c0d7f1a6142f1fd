"""The guardrail registry: each guardrail defined once, and the evaluation of a live stage against it.

A guardrail's definition says everything the rest of the product needs: its plan key, label, unit
and formatting, default threshold, the counts it reads, how it is tested (against its threshold,
or against the concurrent control) and what it draws. Plans (stages.py), the watch (monitor.py),
gates, the API, the pages and /metrics read this registry; adding a guardrail from counts that are
already measured is one entry here and its test (docs/decisions.md, "The guardrail registry").

The tests themselves are anytime-valid e-processes (telemetry/sequential.py) carried across the
rollout's live stages; rollouts/decisions.py keeps their state from one look to the next.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from .models import StageMode

HEALTHY, WATCH, BREACHED, NO_DATA = "healthy", "watch", "breached", "no data"

ABOVE_THRESHOLD = "above-threshold"  # one-sample: the candidate's rate against the plan's threshold
VS_CONTROL = "vs-control"  # two-sample: the candidate's error rate against the concurrent control's

# The 95th percentile exceeds a limit exactly when more than 5 % of requests do.
P95_SHARE = 0.05


@dataclass(frozen=True)
class Guardrail:
    key: str
    label: str
    unit: str  # "rate" (shown as a percentage) or "ms"
    default: float
    test: str  # ABOVE_THRESHOLD or VS_CONTROL
    # (events, n) of the stage so far for ABOVE_THRESHOLD; (x, n, y, m) candidate then control for VS_CONTROL.
    counts: Callable
    # The null of the test from the stage's threshold and plan: the rate for ABOVE_THRESHOLD (the
    # threshold itself unless said), the ratio for VS_CONTROL.
    null: Callable[[float, dict], float] = lambda threshold, plan: threshold
    # The figure shown and the sample it rests on; by default the rate of the first two counts.
    value: Callable | None = None
    n: Callable | None = None
    optional: bool = False  # only where its data exists: never "unevaluable"
    # The raw hourly figure drawn below its evidence (charts.py): an hourly rollup row -> a rate,
    # its name, and the level drawn as its threshold line (None: none).
    hourly: Callable | None = None
    hourly_label: str = ""
    hourly_threshold: Callable[[float], float | None] = lambda threshold: None
    help: str = ""

    def figure(self, metrics) -> float | None:
        if self.value is not None:
            return self.value(metrics)
        events, n = self.counts(metrics)[:2]
        return _rate(events, n)

    def sample(self, metrics) -> int:
        return int((self.n(metrics) if self.n is not None else self.counts(metrics)[1]) or 0)

    def format(self, value: float | None) -> str:
        if value is None:
            return "—"
        return f"{value:.1%}" if self.unit == "rate" else f"{value:,.0f} ms"

    def validate(self, value) -> str | None:
        """The problem with a threshold, or None. A rate must lie strictly between 0 and 1: 0 is
        breached by a single event and 1 never, so neither can be tested."""
        if self.unit == "rate" and not 0 < value < 1:
            return f"a rate strictly between 0 and 1 (got {value:g}); 0 is breached by a single error and 1 can never be"
        if self.unit == "ms" and value <= 0:
            return f"a number > 0 (got {value:g})"
        return None


def _rate(events: int, n: int) -> float | None:
    return events / n if n else None


def _control_ratio(_threshold: float, guardrails: dict) -> float:
    return 1.0 + float(guardrails.get("max_error_rate_increase", 0.0))


def _candidate_rate(key: str, label: str, default: float, field: str, help: str) -> Guardrail:
    """A share of the candidate's decisions (`field` of its counts and of the hourly rollup) under a limit."""
    return Guardrail(
        key, label, "rate", default, ABOVE_THRESHOLD,
        counts=lambda m: (getattr(m.candidate, field), m.candidate.requests),
        hourly=lambda row: _rate(row[field], row["events"]), hourly_label=label.lower(),
        hourly_threshold=lambda t: t, help=help,
    )


REGISTRY: tuple[Guardrail, ...] = (
    _candidate_rate("max_error_rate", "Error rate", 0.05, "errors", "errors and timeouts among the candidate's decisions"),
    _candidate_rate("max_escalation_rate", "Escalation rate", 0.2, "escalations", "the candidate's decisions handed to a human"),
    Guardrail(
        "max_p95_latency_ms", "p95 latency", "ms", 3000, ABOVE_THRESHOLD,
        # Exact at any limit: `slow` is counted against this stage's limit at ingestion.
        counts=lambda m: (m.candidate.slow, m.candidate.timed),
        null=lambda t, g: P95_SHARE,
        value=lambda m: m.p95_latency_ms,
        hourly=lambda row: _rate(row["slow"], row["timed"]), hourly_label="over the p95 limit",
        hourly_threshold=lambda t: P95_SHARE,
        help="breached when more than 5 % of the candidate's requests are slower than the limit",
    ),
    Guardrail(
        "max_disagreement_rate", "Disagreement with humans", "rate", 0.1, ABOVE_THRESHOLD,
        counts=lambda m: (m.pairs - m.agreements, m.pairs),
        optional=True,
        help="only requests a human also decided",
    ),
    Guardrail(
        # The plan's value is the control's error rate expected before the control has data (shown
        # until then); the test itself reads only concurrent counts (docs/decisions.md).
        "baseline_error_rate", "Error rate vs control", "rate", 0.02, VS_CONTROL,
        counts=lambda m: (m.candidate.errors, m.candidate.requests, m.control.errors, m.control.requests),
        null=_control_ratio,
        help="two-sample, against the incumbent's traffic in the same stage (humans or the incumbent version)",
    ),
)
BY_KEY = {g.key: g for g in REGISTRY}

# Plan keys that tune a guardrail rather than being one: how much worse than the control the
# candidate's error rate may be, relative (0.0: not worse).
PARAMETERS = {"max_error_rate_increase": 0.0}
MAX_ERROR_RATE_INCREASE = 10.0

DEFAULT_GUARDRAILS = {**{g.key: g.default for g in REGISTRY}, **PARAMETERS}
PLAN_KEYS = frozenset(DEFAULT_GUARDRAILS)


def validate_plan_value(key: str, value) -> str | None:
    """The problem with one plan guardrail entry, or None."""
    if key in PARAMETERS:
        if not 0 <= value <= MAX_ERROR_RATE_INCREASE:
            return f"a relative increase between 0 and {MAX_ERROR_RATE_INCREASE:g} (got {value:g})"
        return None
    return BY_KEY[key].validate(value)


def tested_keys(stages) -> list[str]:
    """The guardrails a plan tests in some live stage, in registry order: they share the budget."""
    keys = set()
    for stage in stages:
        if stage.mode == StageMode.LIVE:
            keys |= set(stage.guardrails or {})
    return [g.key for g in REGISTRY if g.key in keys]


BUDGET_RULE = ("equal shares per guardrail tested in some live stage; each guardrail is one anytime-valid "
               "e-process carried across all stages, restarting in lanes every 10 min of live time and at every "
               "look (docs/decisions.md)")


def budget_shares(stages, error_budget: float) -> dict[str, float]:
    """Each tested guardrail's part of the rollout's error budget: equal parts (Bonferroni over the
    guardrails; each is one e-process over all stages, docs/decisions.md)."""
    keys = tested_keys(stages)
    return {key: error_budget / len(keys) for key in keys} if keys else {}


@dataclass(frozen=True)
class GuardrailResult:
    name: str
    label: str
    value: float | None
    threshold: float
    verdict: str  # healthy | watch (above the threshold, not yet significant) | breached | no data
    n: int
    statistic: float | None  # log of the e-process (the evidence against health)
    boundary: float | None  # log(1 / alpha): a breach once the statistic reaches it
    method: str
    detail: str = ""
    unit: str = "rate"
    alpha: float | None = None  # this guardrail's share of the error budget, as a probability
    share: float | None = None  # ... as a fraction of the budget
    test: str = ABOVE_THRESHOLD
    formatted: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def evidence(self) -> float | None:
        """How far the statistic is towards its boundary (1.0 = breach), for pages."""
        if self.statistic is None or not self.boundary:
            return None
        return max(self.statistic, 0.0) / self.boundary


METHODS = {
    ABOVE_THRESHOLD: "e-process: binomial likelihood ratios mixed over 6 alternatives, lanes every 10 min and every look",
    VS_CONTROL: "two-sample e-process: where the errors fell, candidate vs control, lanes every 10 min and every look",
}


def _above(g: Guardrail, metrics, value, threshold: float, n: int) -> bool:
    """Above its threshold on the point estimate (not yet significant: "watch")."""
    if g.key == "max_p95_latency_ms":
        return metrics.candidate.slow / n > P95_SHARE
    return value is not None and value > threshold


def evaluate_guardrails(*, stage, metrics, evidence: dict | None = None, alphas: dict | None = None,
                        error_budget: float | None = None) -> list[GuardrailResult]:
    """Each guardrail of a live stage: its figure on the stage's counts, and the verdict of its
    sequential test (`evidence`: key -> log e-value from rollouts/decisions.py; `alphas`: key -> its
    share of the budget). A guardrail without evidence yet is judged on its data only."""
    if stage.mode != StageMode.LIVE:
        return []
    plan = stage.guardrails or {}
    evidence = evidence or {}
    alphas = alphas or {}
    results = []
    for g in REGISTRY:
        if g.key not in plan:
            continue
        threshold = float(plan[g.key])
        n = g.sample(metrics)
        value = g.figure(metrics)
        detail = g.help if g.optional else ""
        if g.test == VS_CONTROL:
            ratio = g.null(threshold, plan)
            control = metrics.control
            if control.requests:
                threshold = control.errors / control.requests * ratio
                detail = (f"control: {control.errors} errors in {control.requests} requests"
                          + (f", allowed {ratio - 1:.0%} worse" if ratio > 1 else ""))
            else:
                detail = "no control traffic in this stage yet (the plan's expected rate shown)"
        elif g.key == "max_p95_latency_ms" and n:
            detail = (f"{metrics.candidate.slow} of {n} requests above {threshold:g} ms "
                      f"(p95 breaches when > 5 %)")
        alpha = alphas.get(g.key)
        statistic = evidence.get(g.key)
        boundary = math.log(1.0 / alpha) if alpha else None
        if n == 0:
            verdict = NO_DATA
        elif statistic is not None and boundary is not None and statistic >= boundary:
            verdict = BREACHED
        elif _above(g, metrics, value, threshold, n):
            verdict = WATCH
        else:
            verdict = HEALTHY
        results.append(GuardrailResult(
            name=g.key, label=g.label, value=value, threshold=threshold, verdict=verdict, n=n,
            statistic=None if statistic is None else round(float(statistic), 4), boundary=boundary,
            method=METHODS[g.test], detail=detail, unit=g.unit, alpha=alpha,
            share=(alpha / error_budget) if alpha and error_budget else None, test=g.test,
            formatted={"value": g.format(value), "threshold": g.format(threshold)},
        ))
    return results


def breaches(results: list[GuardrailResult]) -> list[GuardrailResult]:
    return [r for r in results if r.verdict == BREACHED]


def unevaluable(results: list[GuardrailResult]) -> list[GuardrailResult]:
    """Guardrails a live stage needs but cannot evaluate yet: "no data" never reads as healthy."""
    return [r for r in results if r.verdict == NO_DATA and not BY_KEY[r.name].optional]


def describe_breach(result: GuardrailResult) -> str:
    g = BY_KEY[result.name]
    return (f"{result.label} {g.format(result.value)} over {g.format(result.threshold)} after {result.n} requests "
            f"(evidence log e = {result.statistic:.2f} ≥ {result.boundary:.2f}, its share α = {result.alpha:.2g} "
            f"of the error budget)")
