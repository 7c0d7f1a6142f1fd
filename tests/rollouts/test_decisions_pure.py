"""The pure half of docs/decisions.md: the likelihood-ratio increments (one- and two-sample), their
mean under health, the lane weights, one look of the watch (each event counted once, evidence carried
across stages, lanes on watched live time), a late degradation judged on the evidence after it, the
registry and the evidence chart. No database: mutmut runs these against telemetry/sequential.py and
rollouts/decisions.py."""
import math

import numpy as np
import pytest

from rollouts import decisions
from rollouts.guardrails import REGISTRY, budget_shares
from rollouts.stages import default_plan
from telemetry import sequential

# --- the tests themselves (pure) ---------------------------------------------------------


def test_two_sample_increment_needs_neither_rate_and_takes_a_control_without_errors():
    # No control errors at all: every candidate error is evidence, and nothing raises.
    inc = sequential.two_sample_increment(12, 300, 0, 2000)
    assert inc.shape == (len(sequential.RATIOS),) and (inc > 0).all()
    # Errors falling in proportion to traffic are evidence for health (negative for every alternative).
    assert (sequential.two_sample_increment(5, 500, 95, 9500) < 0).all()
    # No traffic on either side: no evidence.
    assert (sequential.two_sample_increment(0, 0, 3, 100) == 0).all()
    assert (sequential.two_sample_increment(3, 100, 0, 0) == 0).all()


def test_under_health_the_e_process_has_mean_at_most_one():
    """Ville's inequality needs a test supermartingale: at the null, E[exp(increment)] <= 1, exactly.
    Two-sample: given k errors among the candidate's 50 and the control's 950 requests at one common
    rate, the candidate's share is hypergeometric whatever the rate."""
    stats = pytest.importorskip("scipy.stats")
    for k in range(0, 80):
        x = np.arange(0, min(k, 50) + 1)
        pmf = stats.hypergeom(1000, 50, k).pmf(x)
        mean = (pmf[:, None] * np.exp(sequential.two_sample_increment(x, 50, k - x, 950))).sum(axis=0)
        assert (mean <= 1 + 1e-9).all(), (k, mean)
    for p0, n in [(0.05, 50), (0.2, 25), (0.02, 500)]:
        x = np.arange(0, n + 1)
        for p in (p0, p0 / 2):  # at the threshold and below it
            terms = stats.binom(n, p).logpmf(x)[:, None] + sequential.one_sample_increment(x, n, p0)
            log_mean = np.logaddexp.reduce(terms, axis=0)  # in logs: the far tail overflows exp
            assert (log_mean <= 1e-9).all(), (p0, n, p, log_mean)


def test_lane_weights_sum_to_one():
    total = sum(math.exp(sequential.lane_log_weight(k, family))
                for family in sequential.FAMILIES for k in range(2_000_000))
    assert 0.99 < total <= 1.0 + 1e-9


def test_a_look_counts_each_event_once_and_carries_evidence_across_stages():
    counts = {"max_error_rate": (30, 100)}
    nulls = {"max_error_rate": 0.05}
    state, first = decisions.look(None, stage="canary", now_s=0, counts=counts, nulls=nulls)
    state, again = decisions.look(state, stage="canary", now_s=30, counts=counts, nulls=nulls)
    assert again["max_error_rate"] == pytest.approx(first["max_error_rate"])  # nothing new: no new evidence
    # A new stage starts its counts from zero but keeps the evidence so far.
    state, next_stage = decisions.look(state, stage="expand-10", now_s=60, counts={"max_error_rate": (30, 100)}, nulls=nulls)
    assert next_stage["max_error_rate"] > first["max_error_rate"]
    # The state survives its JSON form (GuardrailState).
    restored = decisions.from_json(decisions.to_json(state))
    _, a = decisions.look(state, stage="expand-10", now_s=90, counts={"max_error_rate": (40, 150)}, nulls=nulls)
    _, b = decisions.look(restored, stage="expand-10", now_s=90, counts={"max_error_rate": (40, 150)}, nulls=nulls)
    assert a["max_error_rate"] == pytest.approx(b["max_error_rate"])


def test_lanes_open_on_watched_live_time_and_a_long_gap_opens_one_step():
    state, _ = decisions.look(None, stage="canary", now_s=0, counts={}, nulls={})
    assert state.lanes == {"coarse": 1, "fine": 1}
    for t in range(30, 1201, 30):
        state, _ = decisions.look(state, stage="canary", now_s=t, counts={}, nulls={})
    assert state.lanes == {"coarse": 3, "fine": 41}  # coarse at 0, 600 and 1,200 s; fine at every look
    state, _ = decisions.look(state, stage="canary", now_s=1200 + 6 * 3600, counts={}, nulls={})
    assert state.lanes == {"coarse": 3, "fine": 45} and state.live_s == pytest.approx(1200 + decisions.MAX_STEP_S)


def test_a_late_degradation_is_judged_on_the_evidence_after_it():
    """Two healthy hours would bury a single test; a lane opened near the change catches it."""
    nulls = {"baseline_error_rate": 1.0}
    rng = np.random.default_rng(3)
    state, t, counts, found = None, 0, np.zeros(4), None
    while t < 4 * 3600 and found is None:
        t += 30
        p = 0.02 if t <= 2 * 3600 else 0.20
        counts += [rng.binomial(25, p), 25, rng.binomial(475, 0.02), 475]
        state, ev = decisions.look(state, stage="canary", now_s=t, counts={"baseline_error_rate": tuple(counts)}, nulls=nulls)
        if ev["baseline_error_rate"] >= math.log(1 / 0.002):
            found = t
    assert found is not None and 2 * 3600 < found <= 2 * 3600 + 15 * 60


def test_the_registry_defines_every_plan_guardrail_once():
    assert [g.key for g in REGISTRY] == list(dict.fromkeys(g.key for g in REGISTRY))
    plan = default_plan()
    shares = budget_shares(plan, 0.01)
    assert set(shares) == {g.key for g in REGISTRY}
    assert sum(shares.values()) == pytest.approx(0.01)
    for g in REGISTRY:
        assert g.validate(g.default) is None



def test_the_chart_draws_every_guardrails_evidence_against_its_boundary_above_the_raw_figures():
    from rollouts.charts import guardrail_timeline

    boundaries = {"max_error_rate": 6.2, "max_p95_latency_ms": 6.2, "baseline_error_rate": 6.2}
    trace = [[1_700_000_000, "canary", {"max_error_rate": -3.0, "max_p95_latency_ms": 3.1, "baseline_error_rate": 6.2}],
             [1_700_000_300, "canary", {"max_error_rate": 1.24, "max_p95_latency_ms": 6.2, "baseline_error_rate": 0.0}]]
    hourly = [{"hour": "2026-11-29T10:00:00+00:00", "stage": "canary", "events": 100, "errors": 20, "escalations": 5,
               "timed": 100, "slow": 7}]
    figure = guardrail_timeline(hourly, thresholds={"max_error_rate": 0.05}, marks=[], trace=trace, boundaries=boundaries)
    evidence = {t["name"]: t["y"] for t in figure["data"] if t["yaxis"] == "y"}
    assert evidence == {"Error rate (evidence)": [0.0, 0.2], "p95 latency (evidence)": [0.5, 1.0],
                        "Error rate vs control (evidence)": [1.0, 0.0]}
    raw = [t["name"] for t in figure["data"] if t["yaxis"] == "y2"]
    assert raw == ["error rate (raw hourly)", "escalation rate (raw hourly)", "over the p95 limit (raw hourly)"]
    assert figure["layout"]["yaxis2"]["title"]["text"] == "raw hourly (secondary)"
    assert any(s["yref"] == "y" and s["y0"] == 1 for s in figure["layout"]["shapes"])  # the boundary
