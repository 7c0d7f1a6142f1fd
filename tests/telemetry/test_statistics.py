"""Reference tests for telemetry.statistics: literal textbook values and scipy (tests only)."""

import math
import random

import pytest
from scipy import optimize, special, stats

from telemetry.statistics import (
    LATENCY_BUCKETS_MS,
    DirectionResult,
    SegmentResult,
    cohen_kappa,
    confusion_matrix,
    fisher_exact_lower,
    flag_segments,
    holm,
    latency_bucket,
    mcnemar_direction,
    percentile_from_histogram,
    regularized_incomplete_beta,
    wilson_interval,
)

# --- Wilson ------------------------------------------------------------------------------


def test_wilson_matches_known_values_for_8_of_10():
    low, high = wilson_interval(8, 10)
    assert round(low, 4) == 0.4902
    assert round(high, 4) == 0.9433


def test_wilson_matches_reference_for_45_of_50():
    # statsmodels proportion_confint(45, 50, method="wilson") = (0.78640, 0.95652)
    low, high = wilson_interval(45, 50)
    assert round(low, 4) == 0.7864
    assert round(high, 4) == 0.9565


def test_wilson_for_zero_and_all_successes_is_anchored_at_the_edge():
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson_interval(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)


def test_wilson_with_no_data_is_the_whole_unit_interval():
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("k,n", [(1, 3), (8, 10), (45, 50), (450, 500), (9990, 10000), (3, 1000)])
def test_wilson_bounds_invert_the_score_test(k, n):
    # Independent derivation: the Wilson bounds are the p where the score statistic
    # |phat - p| / sqrt(p (1 - p) / n) equals the normal 97.5 % quantile.
    z = stats.norm.ppf(0.975)
    phat = k / n

    def score(p):
        return (phat - p) ** 2 - z * z * p * (1 - p) / n

    low, high = wilson_interval(k, n)
    assert low == pytest.approx(optimize.brentq(score, 1e-15, phat, xtol=1e-15), rel=1e-9)
    assert high == pytest.approx(optimize.brentq(score, phat, 1 - 1e-15, xtol=1e-15), rel=1e-9)


def test_wilson_honours_a_custom_z():
    low90, high90 = wilson_interval(8, 10, z=stats.norm.ppf(0.95))
    low95, high95 = wilson_interval(8, 10)
    assert low95 < low90 < 0.8 < high90 < high95


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(-1, 10)


# --- kappa and confusion matrix ----------------------------------------------------------

CLASSIC_2X2 = {("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15}


def test_kappa_of_the_classic_2x2_is_0_4():
    # p_o = 35/50 = 0.7, p_e = (25*30 + 25*20) / 50^2 = 0.5, kappa = 0.2 / 0.5.
    assert cohen_kappa(CLASSIC_2X2) == pytest.approx(0.4, abs=1e-12)


def _brute_force_kappa(confusion):
    # Independent of the marginal formula: expand to label lists, p_e is the share of all
    # (agent item i, human item j) combinations whose labels agree.
    agent, human = [], []
    for (a, h), count in confusion.items():
        agent += [a] * count
        human += [h] * count
    n = len(agent)
    p_o = sum(a == h for a, h in zip(agent, human)) / n
    p_e = sum(a == h for a in agent for h in human) / (n * n)
    return (p_o - p_e) / (1 - p_e)


def test_kappa_matches_brute_force_on_a_three_label_table():
    confusion = {
        ("refund", "refund"): 31,
        ("refund", "deny"): 4,
        ("refund", "escalate"): 2,
        ("deny", "refund"): 7,
        ("deny", "deny"): 22,
        ("escalate", "deny"): 3,
        ("escalate", "escalate"): 9,
        ("deny", "other"): 2,  # a label only the human used in this column
    }
    assert cohen_kappa(confusion) == pytest.approx(_brute_force_kappa(confusion), abs=1e-12)


def test_kappa_is_none_without_pairs():
    assert cohen_kappa({}) is None
    assert cohen_kappa({("a", "a"): 0}) is None


def test_kappa_is_one_when_both_always_use_the_same_single_label():
    assert cohen_kappa({("approve", "approve"): 12}) == 1.0


def test_kappa_of_systematic_disagreement_is_negative():
    assert cohen_kappa({("a", "b"): 10, ("b", "a"): 10}) == pytest.approx(-1.0)


def test_confusion_matrix_rows_are_agent_and_columns_human():
    result = confusion_matrix(CLASSIC_2X2 | {("maybe", "no"): 1})
    assert result["labels"] == ["maybe", "no", "yes"]
    assert result["matrix"] == [
        [0, 1, 0],
        [0, 15, 10],
        [0, 5, 20],
    ]


def test_confusion_matrix_of_nothing_is_empty():
    assert confusion_matrix({}) == {"labels": [], "matrix": []}


# --- segment flagging --------------------------------------------------------------------


def test_segment_at_half_agreement_among_others_at_95_percent_is_flagged():
    results = flag_segments(
        {
            "billing": (20, 40),
            "shipping": (285, 300),
            "returns": (190, 200),
            "tiny": (0, 10),
        }
    )
    billing = results["billing"]
    assert isinstance(billing, SegmentResult)
    assert billing.flagged is True
    assert billing.rate == 0.5
    assert billing.p_value == pytest.approx(fisher_exact_lower(20, 40, 475, 510), rel=1e-9)  # the rest includes tiny
    assert (billing.low, billing.high) == wilson_interval(20, 40)

    tiny = results["tiny"]
    assert tiny.flagged is False
    assert tiny.p_value is None
    assert tiny.rate == 0.0

    assert results["shipping"].flagged is False
    assert results["returns"].flagged is False


def test_segment_with_no_pairs_has_no_rate_and_full_interval():
    result = flag_segments({"empty": (0, 0), "main": (90, 100)})["empty"]
    assert result == SegmentResult(
        segment="empty", pairs=0, agreements=0, rate=None, low=0.0, high=1.0, p_value=None, flagged=False
    )


def test_segment_flags_are_corrected_across_segments():
    # Each of these is mildly low on its own (raw p around 0.02-0.07); with 20 tested
    # segments Holm does not let them through.
    segments = {f"s{i}": (95, 100) for i in range(17)}
    segments |= {"x": (89, 100), "y": (89, 100), "z": (90, 100)}
    results = flag_segments(segments)
    assert 0.01 < results["x"].p_value < 0.05
    assert 0.01 < results["z"].p_value < 0.1
    assert not any(result.flagged for result in results.values())


def test_holm_steps_down_and_stops_at_the_first_failure():
    assert holm([0.01, 0.04, 0.03, 0.2], alpha=0.05) == [True, False, False, False]  # 0.03 > 0.05 / 3
    assert holm([0.001, 0.02, 0.013], alpha=0.05) == [True, True, True]  # 0.001 <= .05/3, .013 <= .05/2, .02 <= .05
    assert holm([]) == []
    with pytest.raises(ValueError):
        holm([0.1], alpha=0)


def test_fisher_exact_lower_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for x1, n1, x2, n2 in [(20, 40, 475, 510), (250, 300, 3000, 3300), (0, 30, 5, 50), (30, 30, 0, 40), (1, 1, 0, 1),
                           (270, 300, 2970, 3300), (12, 100, 900, 1000)]:
        expected = stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="less").pvalue
        assert fisher_exact_lower(x1, n1, x2, n2) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_segment_min_pairs_is_configurable():
    segments = {"small": (0, 10), "big": (950, 1000)}
    assert flag_segments(segments)["small"].p_value is None
    assert flag_segments(segments, min_pairs=10)["small"].flagged is True


# --- McNemar direction -------------------------------------------------------------------


@pytest.mark.parametrize(
    "a_to_b,b_to_a",
    [(3, 17), (17, 3), (0, 1), (0, 6), (12, 13), (40, 60), (6000, 4000), (49990, 50010), (3, 2997)],
)
def test_mcnemar_matches_scipy_exact_binomial_test(a_to_b, b_to_a):
    expected = stats.binomtest(a_to_b, a_to_b + b_to_a, 0.5).pvalue
    result = mcnemar_direction(a_to_b, b_to_a)
    assert result.p_value == pytest.approx(expected, rel=1e-9)


def test_mcnemar_reports_the_dominant_direction_and_significance():
    assert mcnemar_direction(17, 3) == DirectionResult(
        a_to_b=17, b_to_a=3, p_value=pytest.approx(0.0025768, rel=1e-4), dominant="a_to_b", significant=True
    )
    weak = mcnemar_direction(2, 5)
    assert weak.dominant == "b_to_a"
    assert weak.significant is False


def test_mcnemar_without_a_direction():
    assert mcnemar_direction(0, 0) == DirectionResult(0, 0, 1.0, None, False)
    assert mcnemar_direction(7, 7) == DirectionResult(7, 7, 1.0, None, False)


def test_mcnemar_does_not_overflow_on_huge_counts():
    result = mcnemar_direction(2_000_000, 1_000_000)
    assert result.p_value == 0.0 or result.p_value < 1e-300
    assert result.dominant == "a_to_b"
    assert mcnemar_direction(1_000_000, 1_000_100).p_value == pytest.approx(
        stats.binomtest(1_000_000, 2_000_100, 0.5).pvalue, rel=1e-8
    )


# --- regularized incomplete beta ---------------------------------------------------------


def test_incomplete_beta_matches_scipy_on_a_grid():
    for a in (0.05, 0.5, 1.0, 2.5, 10.0, 100.0, 1e4):
        for b in (0.05, 0.5, 1.0, 3.0, 10.0, 100.0, 1e4):
            for x in (1e-6, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.999):
                expected = special.betainc(a, b, x)
                got = regularized_incomplete_beta(x, a, b)
                assert got == pytest.approx(expected, rel=1e-10, abs=1e-300), (x, a, b)


def test_incomplete_beta_stays_accurate_for_large_parameters():
    # lgamma of ~1e6 carries ~1e-16 relative error on ~1e7, so ~1e-9 is the attainable precision.
    for a, b, x in [(1e6, 1e6, 0.5), (5e4, 9.5e5, 0.05), (5e4, 9.5e5, 0.0505), (1e6, 10.0, 0.99999)]:
        assert regularized_incomplete_beta(x, a, b) == pytest.approx(special.betainc(a, b, x), rel=1e-8)


def test_incomplete_beta_edges_and_validation():
    assert regularized_incomplete_beta(0.0, 2.0, 3.0) == 0.0
    assert regularized_incomplete_beta(1.0, 2.0, 3.0) == 1.0
    with pytest.raises(ValueError):
        regularized_incomplete_beta(0.5, 0.0, 1.0)
    with pytest.raises(ValueError):
        regularized_incomplete_beta(1.5, 1.0, 1.0)


# --- anytime-valid sequential test -------------------------------------------------------


# --- latency histograms ------------------------------------------------------------------


def test_latency_bucket_is_the_first_upper_bound_at_or_above():
    assert latency_bucket(0) == 0
    assert latency_bucket(1) == 0
    assert latency_bucket(1.01) == 1
    assert latency_bucket(250) == LATENCY_BUCKETS_MS.index(300)
    assert latency_bucket(300) == LATENCY_BUCKETS_MS.index(300)
    assert latency_bucket(60_000) == len(LATENCY_BUCKETS_MS) - 2
    assert latency_bucket(3_600_000) == len(LATENCY_BUCKETS_MS) - 1
    assert LATENCY_BUCKETS_MS[-1] == math.inf
    assert list(LATENCY_BUCKETS_MS) == sorted(LATENCY_BUCKETS_MS)
    with pytest.raises(ValueError):
        latency_bucket(-1)


def test_percentile_from_histogram_returns_the_upper_bound_of_the_quantile_bucket():
    buckets = {latency_bucket(80): 90, latency_bucket(900): 10}
    assert percentile_from_histogram(buckets, 0.50) == 100.0
    assert percentile_from_histogram(buckets, 0.90) == 100.0
    assert percentile_from_histogram(buckets, 0.91) == 1000.0
    assert percentile_from_histogram(buckets, 0.95) == 1000.0
    assert percentile_from_histogram([(250.0, 7), (100.0, 93)], 0.93) == 100.0
    assert percentile_from_histogram([(250.0, 7), (100.0, 93)], 0.94) == 250.0


def test_percentile_from_histogram_is_conservative_against_raw_latencies():
    rng = random.Random(3)
    latencies = [rng.lognormvariate(5.5, 0.9) for _ in range(5_000)]
    buckets = {}
    for ms in latencies:
        index = latency_bucket(ms)
        buckets[index] = buckets.get(index, 0) + 1
    ordered = sorted(latencies)
    for q in (0.5, 0.9, 0.95, 0.99):
        exact = ordered[math.ceil(q * len(ordered)) - 1]
        estimate = percentile_from_histogram(buckets, q)
        assert estimate >= exact
        assert estimate == LATENCY_BUCKETS_MS[latency_bucket(exact)]


def test_percentile_from_empty_histogram_is_none_and_top_bucket_is_infinite():
    assert percentile_from_histogram({}, 0.95) is None
    assert percentile_from_histogram({0: 0}, 0.95) is None
    assert percentile_from_histogram({len(LATENCY_BUCKETS_MS) - 1: 1}, 0.95) == math.inf
    with pytest.raises(ValueError):
        percentile_from_histogram({0: 1}, 95)


def test_fisher_exact_lower_matches_scipy_on_random_tables_and_at_the_mode():
    rng = random.Random(20261129)
    cases = []
    for _ in range(300):
        n1, n2 = rng.randint(1, 300), rng.randint(1, 3000)
        x2 = rng.randint(0, n2)
        x1 = min(n1, max(0, round(n1 * x2 / n2) + rng.randint(-6, 6)))  # near the mode, where the tails switch
        cases.append((x1, n1, x2, n2))
    cases += [(0, 5, 0, 5), (5, 5, 5, 5), (0, 5, 5, 5), (5, 5, 0, 5), (3, 10, 0, 0), (0, 0, 3, 10)]
    for x1, n1, x2, n2 in cases:
        expected = 1.0 if not n1 or not n2 else stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="less").pvalue
        assert fisher_exact_lower(x1, n1, x2, n2) == pytest.approx(expected, rel=1e-9, abs=1e-15), (x1, n1, x2, n2)
    with pytest.raises(ValueError):
        fisher_exact_lower(6, 5, 1, 5)


def test_holm_at_its_edges():
    assert holm([0.05], alpha=0.05) == [True]  # p equal to alpha / m is rejected
    assert holm([0.0125, 0.0125, 0.0125, 0.0125], alpha=0.05) == [True] * 4
    assert holm([0.02, 0.02, 0.5], alpha=0.05) == [False, False, False]  # 0.02 > 0.05 / 3
    assert holm([0.5, 0.001], alpha=0.05) == [False, True]
    assert holm([0.04], alpha=1.0) == [True]
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\], got 1.5"):
        holm([0.1], alpha=1.5)


def test_regularized_incomplete_beta_matches_scipy():
    rng = random.Random(7)
    for _ in range(300):
        a, b, x = rng.uniform(0.3, 400), rng.uniform(0.3, 4000), rng.random()
        assert regularized_incomplete_beta(x, a, b) == pytest.approx(special.betainc(a, b, x), rel=1e-9, abs=1e-300)
    assert regularized_incomplete_beta(0.0, 2, 3) == 0.0 and regularized_incomplete_beta(1.0, 2, 3) == 1.0
    for bad in [(0.5, 0, 1), (0.5, 1, 0), (-0.1, 1, 1), (1.1, 1, 1)]:
        with pytest.raises(ValueError):
            regularized_incomplete_beta(*bad)
