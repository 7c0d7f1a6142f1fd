"""Pure-Python statistics for shadow-vs-human agreement, segment flagging, disagreement direction and latency histograms
(the guardrails' anytime-valid tests are in telemetry/sequential.py)."""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

__all__ = [
    "Z_95",
    "LATENCY_BUCKETS_MS",
    "SegmentResult",
    "DirectionResult",
    "wilson_interval",
    "cohen_kappa",
    "confusion_matrix",
    "fisher_exact_lower",
    "holm",
    "flag_segments",
    "mcnemar_direction",
    "regularized_incomplete_beta",
    "latency_bucket",
    "percentile_from_histogram",
]

# Two-sided 95 % normal quantile, norm.ppf(0.975), written out so the module needs only `math`.
Z_95 = 1.959963984540054

@dataclass(frozen=True)
class SegmentResult:
    segment: str
    pairs: int
    agreements: int
    rate: float | None
    low: float
    high: float
    p_value: float | None
    flagged: bool


@dataclass(frozen=True)
class DirectionResult:
    a_to_b: int
    b_to_a: int
    p_value: float
    dominant: str | None
    significant: bool


def _check_count(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _check_successes(successes: int, n: int, names: tuple[str, str] = ("successes", "n")) -> None:
    _check_count(names[1], n)
    _check_count(names[0], successes)
    if successes > n:
        raise ValueError(f"{names[0]} ({successes}) cannot exceed {names[1]} ({n})")


# --- agreement ---------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0.0, 1.0) when there is no data."""
    _check_successes(successes, n)
    if n == 0:
        return (0.0, 1.0)
    # Wilson (1927), JASA 22:209; same as statsmodels proportion_confint(method="wilson").
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = (z / denom) * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    # The bounds are exactly 0 / 1 at the extremes; clamp away rounding that would leak past them.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def _positive_cells(confusion: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    for key, count in confusion.items():
        if count < 0:
            raise ValueError(f"negative count {count} for {key!r}")
    return {key: count for key, count in confusion.items() if count}


def cohen_kappa(confusion: dict[tuple[str, str], int]) -> float | None:
    """Cohen's kappa of agent vs human labels; None when there are no pairs.

    When chance agreement is 1 (both raters used one and the same label throughout) the
    usual formula is 0/0. We return 1.0 if they also agreed on every pair (perfect, if
    uninformative, agreement) and 0.0 otherwise, so callers always get a number to show.
    """
    cells = _positive_cells(confusion)
    total = sum(cells.values())
    if total == 0:
        return None
    # Cohen (1960), Educ. Psychol. Meas. 20:37: kappa = (p_o - p_e) / (1 - p_e), with p_e
    # from the product of the agent (row) and human (column) marginals.
    agent_totals: dict[str, int] = {}
    human_totals: dict[str, int] = {}
    observed = 0
    for (agent, human), count in cells.items():
        agent_totals[agent] = agent_totals.get(agent, 0) + count
        human_totals[human] = human_totals.get(human, 0) + count
        if agent == human:
            observed += count
    p_o = observed / total
    p_e = sum(agent_totals[label] * human_totals.get(label, 0) for label in agent_totals) / (total * total)
    if p_e >= 1.0:
        return 1.0 if p_o >= 1.0 else 0.0
    return (p_o - p_e) / (1.0 - p_e)


def confusion_matrix(confusion: dict[tuple[str, str], int]) -> dict:
    """{"labels": sorted labels, "matrix": rows = agent label, columns = human label}."""
    _positive_cells(confusion)
    labels = sorted({label for pair in confusion for label in pair})
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for (agent, human), count in confusion.items():
        matrix[index[agent]][index[human]] += count
    return {"labels": labels, "matrix": matrix}


# --- segments ----------------------------------------------------------------------------


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact_lower(x1: int, n1: int, x2: int, n2: int) -> float:
    """One-sided p-value that proportion 1 (x1/n1) is LOWER than proportion 2, by Fisher's exact test
    (the same as scipy.stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="less")).

    Exact where the normal approximation is not: with agreement near 90 % the lower tail of a
    segment's rate is long, and z-test p-values there are too small (a healthy shadow of 12 segments
    was flagged 7.5 % of the time instead of 5 %; docs/decisions.md, "Segments")."""
    _check_successes(x1, n1, ("x1", "n1"))
    _check_successes(x2, n2, ("x2", "n2"))
    if n1 == 0 or n2 == 0:
        return 1.0
    total, successes = n1 + n2, x1 + x2
    low = max(0, n1 - (total - successes))
    log_norm = _log_choose(total, n1)

    def log_pmf(k: int) -> float:
        return _log_choose(successes, k) + _log_choose(total - successes, n1 - k) - log_norm

    high = min(n1, successes)
    mode = (n1 + 1) * (successes + 1) // (total + 2)

    def tail(start: int, stop: int, step: int) -> float:
        # Sum the pmf from `start` away from the mode: the terms fall off geometrically, so the sum
        # stops once they no longer change it; scaled by the first term to stay in range.
        first = log_pmf(start)
        acc = 0.0
        for k in range(start, stop, step):
            term = math.exp(log_pmf(k) - first)
            acc += term
            if term < 1e-17 * acc:
                break
        return math.exp(first) * acc

    if x1 < mode:
        return min(1.0, tail(x1, low - 1, -1))  # P(X <= x1) directly
    if x1 >= high:
        return 1.0
    return max(0.0, 1.0 - tail(x1 + 1, high + 1, 1))  # 1 - P(X > x1)


def holm(p_values: list[float], alpha: float = 0.05) -> list[bool]:
    """Which hypotheses Holm's step-down procedure rejects, in input order: the family-wise error
    stays <= alpha under any dependence between the tests (Holm 1979, Scand. J. Statist. 6:65)."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    m = len(p_values)
    rejected = [False] * m
    for rank, i in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        if p_values[i] > alpha / (m - rank):
            break
        rejected[i] = True
    return rejected


def flag_segments(
    segments: dict[str, tuple[int, int]],
    q: float = 0.05,
    min_pairs: int = 30,
) -> dict[str, SegmentResult]:
    """Flag segments whose agreement is significantly below the rest (one-sided Fisher exact, Holm across tested segments).

    `segments` maps name -> (agreements, pairs). Segments under `min_pairs` get an interval
    but are not tested (p_value None) and do not count towards the BH family.
    """
    for name, (agreements, pairs) in segments.items():
        _check_successes(agreements, pairs, (f"agreements of {name!r}", f"pairs of {name!r}"))
    total_agreements = sum(agreements for agreements, _ in segments.values())
    total_pairs = sum(pairs for _, pairs in segments.values())

    tested = [name for name, (_, pairs) in segments.items() if pairs >= min_pairs]
    p_values = {
        name: fisher_exact_lower(
            segments[name][0],
            segments[name][1],
            total_agreements - segments[name][0],
            total_pairs - segments[name][1],
        )
        for name in tested
    }
    # Holm, not Benjamini-Hochberg: a segment's test against "the rest" is negatively dependent on the
    # others', where BH's 5 % is not guaranteed (a healthy 12-segment shadow measured 4-5 %); Holm's
    # family-wise 5 % holds under any dependence (docs/decisions.md, "Segments").
    rejected = dict(zip(tested, holm([p_values[name] for name in tested], alpha=q)))

    results = {}
    for name, (agreements, pairs) in segments.items():
        low, high = wilson_interval(agreements, pairs)
        results[name] = SegmentResult(
            segment=name,
            pairs=pairs,
            agreements=agreements,
            rate=agreements / pairs if pairs else None,
            low=low,
            high=high,
            p_value=p_values.get(name),
            flagged=rejected.get(name, False),
        )
    return results


# --- direction of disagreement -----------------------------------------------------------


def mcnemar_direction(a_to_b: int, b_to_a: int) -> DirectionResult:
    """Exact McNemar test on the two off-diagonal cells of a label pair (A, B).

    a_to_b counts pairs where the agent said A and the human B; b_to_a the reverse.
    """
    _check_count("a_to_b", a_to_b)
    _check_count("b_to_a", b_to_a)
    n = a_to_b + b_to_a
    k = min(a_to_b, b_to_a)
    if n == 0 or a_to_b == b_to_a:
        p_value = 1.0
    else:
        # Exact McNemar = two-sided binomial test of k of n at p = 1/2 (as scipy.stats.binomtest;
        # the distribution is symmetric so both tails are equal): p = 2 P(X <= k).
        # Start from log pmf(k) via lgamma so large n cannot overflow, then walk down the tail
        # with pmf(i-1)/pmf(i) = i / (n - i + 1); terms shrink geometrically past ~sqrt(n)
        # steps from the centre, so we stop once they no longer change the sum.
        log_pmf_k = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2.0)
        tail = 1.0
        term = 1.0
        for i in range(k, 0, -1):
            term *= i / (n - i + 1)
            tail += term
            if term < tail * 1e-17:
                break
        p_value = min(1.0, 2.0 * math.exp(log_pmf_k) * tail)
    if a_to_b > b_to_a:
        dominant = "a_to_b"
    elif b_to_a > a_to_b:
        dominant = "b_to_a"
    else:
        dominant = None
    return DirectionResult(
        a_to_b=a_to_b,
        b_to_a=b_to_a,
        p_value=p_value,
        dominant=dominant,
        significant=p_value < 0.05,
    )


# --- regularized incomplete beta ---------------------------------------------------------

_CF_EPS = 1e-15
_CF_TINY = 1e-300


def _beta_continued_fraction(x: float, a: float, b: float) -> float:
    # Press et al., Numerical Recipes (3rd ed.) section 6.4 "betacf": the continued fraction for
    # I_x(a, b) evaluated with the modified Lentz method. It converges fast for
    # x < (a + 1) / (a + b + 2) in O(sqrt(max(a, b))) iterations, hence the scaled cap.
    max_iter = 200 + int(10.0 * math.sqrt(max(a, b)))
    tiny = _CF_TINY
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if -tiny < d < tiny:
        d = tiny
    d = 1.0 / d
    h = d
    for m in range(1, max_iter + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if -tiny < d < tiny:
            d = tiny
        c = 1.0 + aa / c
        if -tiny < c < tiny:
            c = tiny
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if -tiny < d < tiny:
            d = tiny
        c = 1.0 + aa / c
        if -tiny < c < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if -_CF_EPS < delta - 1.0 < _CF_EPS:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (x={x}, a={a}, b={b})")


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _log_betainc_tails(x: float, a: float, b: float) -> tuple[float, float]:
    """(log I_x(a, b), log(1 - I_x(a, b))) for 0 < x < 1, each tail kept at full relative precision."""
    # Numerical Recipes betai: front factor x^a (1-x)^b / B(a, b), then the fraction on whichever
    # side converges (using I_x(a, b) = 1 - I_{1-x}(b, a)). The tail the fraction gives directly
    # is the small one and is returned in log space, so it can underflow without becoming 0.
    log_front = a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b)
    if x < (a + 1.0) / (a + b + 2.0):
        log_lower = log_front + math.log(_beta_continued_fraction(x, a, b)) - math.log(a)
        lower = math.exp(log_lower)
        return log_lower, (math.log1p(-lower) if lower < 1.0 else -math.inf)
    log_upper = log_front + math.log(_beta_continued_fraction(1.0 - x, b, a)) - math.log(b)
    upper = math.exp(log_upper)
    return (math.log1p(-upper) if upper < 1.0 else -math.inf), log_upper


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the Beta(a, b) CDF at x (same as scipy.special.betainc(a, b, x))."""
    if a <= 0.0 or b <= 0.0:
        raise ValueError(f"a and b must be > 0, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1], got {x}")
    if x == 0.0:
        return 0.0
    if x == 1.0:
        return 1.0
    return math.exp(_log_betainc_tails(x, a, b)[0])


# --- latency histograms ------------------------------------------------------------------

# Upper bounds (ms) of the fixed latency buckets, roughly log-spaced (1-2-5 steps, finer where
# SLAs usually sit). Bucket i holds latencies in (LATENCY_BUCKETS_MS[i-1], LATENCY_BUCKETS_MS[i]].
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 1500.0,
    2000.0, 2500.0, 3000.0, 4000.0, 5000.0, 7500.0, 10000.0, 15000.0, 20000.0, 30000.0,
    60000.0, math.inf,
)


def latency_bucket(ms: float) -> int:
    """Index of the first bucket whose upper bound is >= `ms`."""
    if math.isnan(ms) or ms < 0:
        raise ValueError(f"latency must be a non-negative number of ms, got {ms}")
    return bisect_left(LATENCY_BUCKETS_MS, ms)


def percentile_from_histogram(
    buckets: dict[int, int] | list[tuple[float, int]],
    q: float,
) -> float | None:
    """The q-quantile (0 <= q <= 1) of a bucketed histogram, as the upper bound of its bucket.

    `buckets` is either {bucket index into LATENCY_BUCKETS_MS: count} or [(upper bound, count)].
    The answer is CONSERVATIVE: the true quantile lies in the returned bucket, so it is never
    above the returned bound (and may be well below it, up to the bucket's lower bound). The
    top bucket's bound is inf. None when the histogram is empty.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    if isinstance(buckets, dict):
        pairs = [(LATENCY_BUCKETS_MS[index], count) for index, count in buckets.items()]
    else:
        pairs = list(buckets)
    for bound, count in pairs:
        if count < 0:
            raise ValueError(f"negative count {count} for bucket {bound}")
    pairs.sort(key=lambda pair: pair[0])
    total = sum(count for _, count in pairs)
    if total == 0:
        return None
    # Nearest-rank definition: the q-quantile is the ceil(q * N)-th smallest observation. The
    # rounding stops float noise (0.07 * 100 = 7.000000000000001) from bumping the rank by one.
    rank = max(1, math.ceil(round(q * total, 9)))
    cumulative = 0
    for bound, count in pairs:
        cumulative += count
        if cumulative >= rank:
            return float(bound)
    return float(pairs[-1][0])  # unreachable: rank <= total
