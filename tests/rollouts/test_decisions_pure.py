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
    thresholds = {"max_error_rate": 0.05, "max_escalation_rate": 0.2, "max_p95_latency_ms": 3000}
    figure = guardrail_timeline(hourly, thresholds=thresholds, marks=[], trace=trace, boundaries=boundaries)
    evidence = {t["name"]: t["y"] for t in figure["data"] if t["yaxis"] == "y"}
    assert evidence == {"Error rate (evidence)": [0.0, 0.2], "p95 latency (evidence)": [0.5, 1.0],
                        "Error rate vs control (evidence)": [1.0, 0.0]}
    raw = [t["name"] for t in figure["data"] if t["yaxis"] == "y2"]
    assert raw == ["error rate (raw hourly)", "escalation rate (raw hourly)", "over the p95 limit (raw hourly)"]
    assert figure["layout"]["yaxis2"]["title"]["text"] == "raw hourly (secondary)"
    assert any(s["yref"] == "y" and s["y0"] == 1 for s in figure["layout"]["shapes"])  # the boundary
    raw_y = {t["name"]: t["y"] for t in figure["data"] if t["yaxis"] == "y2"}
    assert raw_y["error rate (raw hourly)"] == [0.2] and raw_y["over the p95 limit (raw hourly)"] == [0.07]
    limits = sorted(s["y0"] for s in figure["layout"]["shapes"] if s["yref"] == "y2")
    assert limits == [0.05, 0.05, 0.2]  # error rate 5 %, p95: 5 % of requests, escalations 20 %


# --- exact values (each formula pinned, not only its sign) -----------------------------------


def test_one_sample_increment_is_the_binomial_log_likelihood_ratio_of_each_alternative():
    inc = sequential.one_sample_increment(3, 10, 0.1)
    for r, value in zip(sequential.RATIOS, inc):
        p1 = min(0.1 * r, 0.55)
        assert value == pytest.approx(3 * math.log(p1 / 0.1) + 7 * math.log((1 - p1) / 0.9), rel=1e-12)
    # Alternatives stop halfway between the null and 1.
    capped = sequential.one_sample_increment(1, 2, 0.5)
    p1 = np.minimum(0.5 * sequential.RATIOS, 0.75)
    assert capped == pytest.approx(np.log(p1 / 0.5) + np.log((1 - p1) / 0.5), rel=1e-12)
    # Integer arrays broadcast, one row per run.
    rows = sequential.one_sample_increment(np.array([0, 5]), np.array([10, 10]), 0.2)
    assert rows.shape == (2, len(sequential.RATIOS))
    assert rows[1] == pytest.approx(sequential.one_sample_increment(5, 10, 0.2))


@pytest.mark.parametrize("p0", [0.0, 1.0, 1.5, -0.1])
def test_a_null_rate_outside_0_1_is_refused(p0):
    with pytest.raises(ValueError, match="^a null rate must lie strictly between 0 and 1$"):
        sequential.one_sample_increment(1, 10, p0)


def test_two_sample_increment_is_where_the_errors_fell():
    inc = sequential.two_sample_increment(4, 100, 6, 900, rho0=1.25)
    pi0 = 1.25 * 100 / (1.25 * 100 + 900)
    for r, value in zip(sequential.RATIOS, inc):
        rho1 = 1.25 * r
        pi1 = rho1 * 100 / (rho1 * 100 + 900)
        assert value == pytest.approx(4 * math.log(pi1 / pi0) + 6 * math.log((1 - pi1) / (1 - pi0)), rel=1e-12)
    assert not np.allclose(sequential.two_sample_increment(4, 100, 6, 900), inc)  # rho0 matters
    rows = sequential.two_sample_increment(np.array([0, 4]), np.array([0, 100]), np.array([3, 6]), np.array([50, 900]), rho0=1.25)
    assert (rows[0] == 0).all() and rows[1] == pytest.approx(inc)


def test_lane_weights_exactly():
    coarse_k, fine_k = sequential.FAMILIES["coarse"][1], sequential.FAMILIES["fine"][1]
    wc, wf = sequential.WEIGHTS["coarse"] / 2, sequential.WEIGHTS["fine"] / 2
    assert sequential.lane_log_weight(0) == pytest.approx(math.log(wc / coarse_k))
    assert sequential.lane_log_weight(coarse_k - 1) == pytest.approx(math.log(wc / coarse_k))
    assert sequential.lane_log_weight(coarse_k) == pytest.approx(math.log(wc * coarse_k / (coarse_k * (coarse_k + 1))))
    assert sequential.lane_log_weight(3 * coarse_k) == pytest.approx(math.log(wc * coarse_k / (3 * coarse_k * (3 * coarse_k + 1))))
    assert sequential.lane_log_weight(7, "fine") == pytest.approx(math.log(wf / fine_k))
    with pytest.raises(ValueError, match="^lane index must be >= 0, got -1$"):
        sequential.lane_log_weight(-1)


def test_a_family_without_weight_opens_lanes_that_count_for_nothing(monkeypatch):
    monkeypatch.setitem(sequential.WEIGHTS, "coarse", 0.0)
    assert sequential.lane_log_weight(0) == -math.inf
    S, B = sequential.new_test()
    assert sequential.open_lane(S, B, 0).tolist() == [-math.inf] * len(sequential.RATIOS)


def test_the_evidence_sums_the_alternatives_of_the_best_lane():
    S = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    B = np.full(6, -1.0)
    expected = math.log(sum(math.exp(s - 1.0) for s in S) / 6)
    assert sequential.log_evidence(S, B) == pytest.approx(expected, rel=1e-12)
    # A later lane with a higher weight-less-start replaces an earlier one, per alternative.
    assert sequential.open_lane(S, B, 0).tolist() == np.maximum(B, sequential.lane_log_weight(0) - S).tolist()
    assert sequential.log_evidence(*sequential.new_test()) == -math.inf
    S2, B2 = sequential.new_test((4,))
    assert S2.shape == B2.shape == (4, len(sequential.RATIOS)) and (S2 == 0).all() and (B2 == -math.inf).all()
    assert sequential.boundary(0.002) == pytest.approx(math.log(500))
    for alpha in (0.0, 1.0):
        with pytest.raises(ValueError, match="alpha must lie strictly between 0 and 1"):
            sequential.boundary(alpha)


def test_the_information_limit_sprt_counts_requests_until_it_crosses():
    # Every request an error: log(p1/p0) = log 2 a request; log(1/0.01) / log 2 = 6.64 -> the 7th.
    assert sequential.sprt_requests(0.02, 0.04, 0.01, np.ones(20)).tolist() == 7
    assert sequential.sprt_requests(0.02, 0.04, 0.01, np.zeros(20)).tolist() == 21  # never: horizon + 1


# --- one look, exactly ---------------------------------------------------------------------


def test_a_look_advances_watched_time_within_limits_and_opens_lanes_per_family():
    state, _ = decisions.look(None, stage="canary", now_s=100, counts={}, nulls={})
    assert (state.live_s, state.last_s) == (0.0, 100)
    state, _ = decisions.look(state, stage="canary", now_s=100, counts={}, nulls={})
    assert state.live_s == 0.0  # a second look at the same moment adds no time
    state, _ = decisions.look(state, stage="canary", now_s=50, counts={}, nulls={})
    assert state.live_s == 0.0 and state.last_s == 50  # a clock that steps back adds none either
    state, _ = decisions.look(state, stage="canary", now_s=80, counts={}, nulls={})
    assert state.live_s == 30.0 and state.lanes == {"coarse": 1, "fine": 2}


def test_a_guardrail_first_tested_late_starts_with_the_first_lanes_weight():
    state, _ = decisions.look(None, stage="canary", now_s=0, counts={}, nulls={})
    for t in range(30, 1300, 30):
        state, _ = decisions.look(state, stage="canary", now_s=t, counts={}, nulls={})
    state, _ = decisions.look(state, stage="canary", now_s=1320, counts={"max_error_rate": (0, 0)}, nulls={"max_error_rate": 0.05})
    S, B = state.tests["max_error_rate"]
    assert (S == 0).all() and B.tolist() == [sequential.lane_log_weight(0, "coarse")] * len(sequential.RATIOS)


def test_a_look_uses_each_tests_own_null_and_changes_nothing_it_was_given():
    counts = np.array([2.0, 50.0, 10.0, 950.0])
    state, _ = decisions.look(None, stage="canary", now_s=0, counts={"baseline_error_rate": tuple(counts)},
                              nulls={"baseline_error_rate": 2.0})
    S, B = state.tests["baseline_error_rate"]
    assert S == pytest.approx(sequential.two_sample_increment(2, 50, 10, 950, rho0=2.0))
    counts += 100  # the caller's arrays are the caller's
    assert [float(c) for c in state.counts["baseline_error_rate"]] == [2.0, 50.0, 10.0, 950.0]
    before = decisions.to_json(state)
    decisions.look(state, stage="canary", now_s=30, counts={"baseline_error_rate": (3, 80, 12, 1200)},
                   nulls={"baseline_error_rate": 2.0})
    assert decisions.to_json(state) == before  # pure: the state given is not changed
    one, _ = decisions.look(None, stage="canary", now_s=0, counts={"max_error_rate": (2, 50)}, nulls={"max_error_rate": 0.05})
    assert one.tests["max_error_rate"][0] == pytest.approx(sequential.one_sample_increment(2, 50, 0.05))


def test_the_state_survives_json_field_by_field():
    state = None
    for t, c in [(0, (1, 40)), (30, (2, 80)), (700, (3, 120))]:
        state, ev = decisions.look(state, stage="canary", now_s=t, counts={"max_error_rate": c}, nulls={"max_error_rate": 0.05})
        state = decisions.traced(state, ev, now_s=t)
    data = decisions.to_json(state)
    back = decisions.from_json(data)
    assert (back.stage, back.live_s, back.last_s, back.lanes, back.trace) == ("canary", 150.0, 700, {"coarse": 1, "fine": 6}, state.trace)
    assert [float(c) for c in back.counts["max_error_rate"]] == [3.0, 120.0]
    for mine, theirs in zip(state.tests["max_error_rate"], back.tests["max_error_rate"]):
        assert np.allclose(mine, theirs)
    assert decisions.to_json(back) == data
    assert decisions.from_json(None) is None and decisions.from_json({}) is None
    fresh = decisions.from_json({"stage": "canary"})
    assert (fresh.live_s, fresh.lanes, fresh.counts, fresh.tests, fresh.trace) == (0.0, {}, {}, {}, [])


def test_the_trace_keeps_one_point_per_interval_and_a_bounded_number():
    state = decisions.WatchState(stage="canary")
    state = decisions.traced(state, {"max_error_rate": np.float64(-1.23456)}, now_s=0)
    state = decisions.traced(state, {"max_error_rate": np.float64(2.0)}, now_s=decisions.TRACE_EVERY_S - 1)
    assert state.trace == [[0, "canary", {"max_error_rate": -1.235}]]
    state = decisions.traced(state, {"max_error_rate": np.float64(-np.inf)}, now_s=decisions.TRACE_EVERY_S)
    assert state.trace[-1] == [decisions.TRACE_EVERY_S, "canary", {}]
    for i in range(decisions.TRACE_POINTS + 5):
        state = decisions.traced(state, {}, now_s=(i + 2) * decisions.TRACE_EVERY_S)
    assert len(state.trace) == decisions.TRACE_POINTS and state.trace[-1][0] == (decisions.TRACE_POINTS + 6) * decisions.TRACE_EVERY_S


def test_one_request_on_either_side_is_already_evidence():
    assert (sequential.two_sample_increment(1, 1, 0, 10) > 0).all()
    assert (sequential.two_sample_increment(1, 10, 0, 1) > 0).all()


def test_evidence_of_many_runs_is_each_runs_evidence():
    rng = np.random.default_rng(5)
    S = rng.normal(size=(3, len(sequential.RATIOS)))
    B = rng.normal(size=(3, len(sequential.RATIOS)))
    together = sequential.log_evidence(S, B)
    assert together.shape == (3,)
    assert together == pytest.approx([float(sequential.log_evidence(S[i], B[i])) for i in range(3)], rel=1e-12)


def test_the_information_limit_matches_a_request_by_request_sprt():
    rng = np.random.default_rng(9)
    errors = rng.random((20, 400)) < 0.2
    got = sequential.sprt_requests(0.02, 0.2, 0.01, errors)
    for row, answer in zip(errors, got):
        total, first = 0.0, len(row) + 1
        for i, e in enumerate(row, start=1):
            total += math.log(0.2 / 0.02) if e else math.log(0.8 / 0.98)
            if total >= math.log(100):
                first = i
                break
        assert answer == first


def test_fine_lanes_carry_the_fine_weight():
    state, _ = decisions.look(None, stage="canary", now_s=0, counts={"max_error_rate": (5, 20)}, nulls={"max_error_rate": 0.05})
    S0 = state.tests["max_error_rate"][0].copy()
    state, _ = decisions.look(state, stage="canary", now_s=30, counts={"max_error_rate": (5, 20)}, nulls={"max_error_rate": 0.05})
    B = state.tests["max_error_rate"][1]
    expected = np.maximum(sequential.lane_log_weight(0, "coarse"), sequential.lane_log_weight(1, "fine") - S0)
    assert B == pytest.approx(expected)
    assert state.lanes == {"coarse": 1, "fine": 2}


def test_the_trace_interval_counts_from_the_last_point_at_any_epoch():
    state = decisions.traced(decisions.WatchState(stage="canary"), {}, now_s=1_800_000_000)
    assert len(decisions.traced(state, {}, now_s=1_800_000_000 + decisions.TRACE_EVERY_S - 1).trace) == 1
    assert len(decisions.traced(state, {}, now_s=1_800_000_000 + decisions.TRACE_EVERY_S).trace) == 2


def test_the_json_state_has_a_format_version_and_keeps_an_unopened_lane_as_very_unlikely():
    S, B = sequential.new_test()
    state = decisions.WatchState(stage="canary", tests={"max_error_rate": (S, B)})
    data = decisions.to_json(state)
    assert data["v"] == 1
    assert data["tests"]["max_error_rate"][1] == [-1e300] * len(sequential.RATIOS)  # JSON has no -inf
    back = decisions.from_json(data)
    assert sequential.log_evidence(*back.tests["max_error_rate"]) < -1e299
