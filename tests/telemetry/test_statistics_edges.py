"""The statistics at their edges: the messages that name a bad argument, the bounds of every
parameter, the clamps that keep float noise out of [0, 1], and defaults passed through. Written
to kill the mutants that survived tests/telemetry/test_statistics.py (docs/architecture.md,
"Tests that can fail")."""
import math

import pytest

from telemetry.statistics import (
    _beta_continued_fraction,
    cohen_kappa,
    fisher_exact_lower,
    flag_segments,
    holm,
    latency_bucket,
    mcnemar_direction,
    percentile_from_histogram,
    regularized_incomplete_beta,
    wilson_interval,
)

# --- arguments that cannot be counts name themselves -----------------------------------------


@pytest.mark.parametrize("call, message", [
    (lambda: wilson_interval(-1, 5), r"^successes must be >= 0, got -1$"),
    (lambda: wilson_interval(1, -1), r"^n must be >= 0, got -1$"),
    (lambda: wilson_interval(6, 5), r"^successes \(6\) cannot exceed n \(5\)$"),
    (lambda: fisher_exact_lower(5, 3, 1, 2), r"^x1 \(5\) cannot exceed n1 \(3\)$"),
    (lambda: fisher_exact_lower(1, 2, 5, 3), r"^x2 \(5\) cannot exceed n2 \(3\)$"),
    (lambda: fisher_exact_lower(0, -1, 0, 1), r"^n1 must be >= 0, got -1$"),
    (lambda: fisher_exact_lower(0, 1, -2, 1), r"^x2 must be >= 0, got -2$"),
    (lambda: mcnemar_direction(-1, 0), r"^a_to_b must be >= 0, got -1$"),
    (lambda: mcnemar_direction(0, -2), r"^b_to_a must be >= 0, got -2$"),
    (lambda: flag_segments({"eu": (5, 3)}), r"^agreements of 'eu' \(5\) cannot exceed pairs of 'eu' \(3\)$"),
    (lambda: cohen_kappa({("a", "b"): -1}), r"^negative count -1 for \('a', 'b'\)$"),
    (lambda: latency_bucket(-1), r"^latency must be a non-negative number of ms, got -1$"),
    (lambda: latency_bucket(math.nan), r"^latency must be a non-negative number of ms, got nan$"),
    (lambda: percentile_from_histogram([(5.0, -3)], 0.5), r"^negative count -3 for bucket 5.0$"),
])
def test_a_bad_count_is_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- parameters and their bounds ----------------------------------------------------------------


@pytest.mark.parametrize("q, ok", [(0.0, False), (1e-9, True), (1.0, True), (1.0001, False), (1.5, False)])
def test_holm_takes_alpha_in_0_exclusive_1_inclusive(q, ok):
    if ok:
        assert holm([0.01, 0.5], alpha=q) in ([True, False], [True, True], [False, False])
    else:
        with pytest.raises(ValueError, match=rf"^alpha must be in \(0, 1\], got {q}$"):
            holm([0.01], alpha=q)


@pytest.mark.parametrize("a, b", [(0, 1), (1, 0), (0, 0), (-1, 2)])
def test_incomplete_beta_needs_positive_shapes(a, b):
    with pytest.raises(ValueError, match=rf"^a and b must be > 0, got a={a}, b={b}$"):
        regularized_incomplete_beta(0.5, a, b)


@pytest.mark.parametrize("x", [-0.1, 1.1, 1.5, 2.0])
def test_incomplete_beta_is_defined_on_0_1(x):
    with pytest.raises(ValueError, match=rf"^x must be in \[0, 1\], got {x}$"):
        regularized_incomplete_beta(x, 2, 3)


@pytest.mark.parametrize("q", [-0.01, 1.01, 1.5])
def test_a_quantile_lies_in_0_1(q):
    with pytest.raises(ValueError, match=rf"^q must be in \[0, 1\], got {q}$"):
        percentile_from_histogram({0: 1}, q)


# --- results at their edges ---------------------------------------------------------------------


@pytest.mark.parametrize("n", [7, 9, 12, 14, 18])
def test_no_success_anchors_the_wilson_interval_at_exactly_zero(n):
    # The formula lands a hair above 0 for these n; the interval must still start at 0.
    assert wilson_interval(0, n)[0] == 0.0


def test_wilson_bounds_stay_in_the_unit_interval():
    for n in range(1, 120):
        for k in range(n + 1):
            low, high = wilson_interval(k, n)
            assert 0.0 <= low <= k / n <= high <= 1.0


@pytest.mark.parametrize("a_to_b, b_to_a", [(2, 1), (3, 2), (4, 3), (9, 8), (10, 9)])
def test_a_p_value_never_exceeds_one(a_to_b, b_to_a):
    # 2 P(X <= k) is exactly 1 here; summed in floats it comes out a few ulps above.
    assert mcnemar_direction(a_to_b, b_to_a).p_value == 1.0


def test_kappa_counts_a_label_only_the_agent_used_as_never_chosen_by_humans():
    # Agent: a 6, c 4. Humans: a 4, b 6. Observed agreement 4/10; chance (6*4 + 4*0) / 100.
    kappa = cohen_kappa({("a", "a"): 4, ("a", "b"): 2, ("c", "b"): 4})
    assert kappa == pytest.approx((0.4 - 0.24) / (1 - 0.24), abs=1e-12)


def test_a_segment_of_exactly_30_pairs_is_tested_by_default():
    results = flag_segments({"small": (10, 30), "big": (950, 1000)})
    assert results["small"].p_value is not None
    assert flag_segments({"small": (10, 29), "big": (950, 1000)})["small"].p_value is None


def test_flag_segments_passes_its_q_on():
    segments = {"x": (25, 30), "rest": (900, 1000)}
    p = fisher_exact_lower(25, 30, 900, 1000)
    assert 0.05 < p < 0.25  # significant at q = 0.5 over two tested segments, not at 0.05
    assert flag_segments(segments)["x"].flagged is False
    assert flag_segments(segments, q=0.5)["x"].flagged is True


@pytest.mark.parametrize("q, expected", [(0.0, 1.0), (0.05, 1.0), (0.9, 1.0), (0.91, 50.0), (1.0, 50.0)])
def test_the_quantile_is_the_ceil_q_n_th_observation(q, expected):
    # Nine observations in the first bucket (<= 1 ms), one in (20, 50] ms.
    assert percentile_from_histogram({0: 9, 5: 1}, q) == expected


def test_the_smallest_quantile_is_the_first_observation():
    # One observation in the first bucket, nine in (20, 50] ms: rank 1 is the 1 ms one.
    assert percentile_from_histogram({0: 1, 5: 9}, 0.0) == 1.0
    assert percentile_from_histogram({0: 1, 5: 9}, 0.1) == 1.0
    assert percentile_from_histogram({0: 1, 5: 9}, 0.11) == 50.0


def test_the_continued_fraction_survives_a_zero_first_denominator():
    # a=1, b=3, x=1/2 makes Lentz's first d exactly 0: the guard replaces it and the fraction still
    # gives I_x = 1 - (1 - x)^3 = 0.875 through the front factor x (1-x)^3 / B(1, 3) = 0.1875.
    assert _beta_continued_fraction(0.5, 1.0, 3.0) == pytest.approx(0.875 / 0.1875, rel=1e-12)
