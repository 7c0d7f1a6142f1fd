"""Anytime-valid sequential tests for the guardrails: e-processes that may be looked at every 30 s.

Pure (numpy, no Django): every function takes scalars or arrays, so the simulation harness
(bench/guardrails.py) runs a thousand rollouts at once through the very functions the watch calls.
The rules and why they hold are in docs/decisions.md, "Automatic rollback".

The building blocks:

- A likelihood-ratio *increment* per look, for each alternative of a fixed grid: one-sample (a rate
  against a fixed threshold) or two-sample (the candidate's error rate against the concurrent
  control's, both unknown, by conditioning on where the errors fell).
- *Lanes*: a fresh test starts every `LANE_S` seconds of live time (and a fine one at every look), so a late degradation is judged
  on the evidence after it, not diluted by hours of health; lane k carries a fixed weight w_k with
  sum 1. The mixture sum_k w_k sum_i g_i LR_{k,i} is a test martingale under the null (Ville's
  inequality bounds its false alarm by alpha over an unbounded horizon); we keep, per alternative,
  only the best lane, which is a lower bound of the mixture, so the bound still holds.
"""
from __future__ import annotations

import math

import numpy as np

# Alternatives mixed over: the rate (or the ratio to the control) is this many times the null's.
# 1.25x finds a small breach slowly, 10x a collapse within a minute; equal weights (docs/decisions.md).
RATIOS = np.array([1.25, 1.5, 2.0, 3.0, 5.0, 10.0])
LOG_GRID_WEIGHT = -math.log(len(RATIOS))
# Two families of lanes share the weight (WEIGHTS). Coarse: a new lane every 10 minutes of live time,
# cheap enough to judge a small degradation on a long run of evidence. Fine: a new lane at every
# look (30 s), so that a collapse is judged on the evidence after it, however recently the last
# coarse lane opened. In each family the first lanes (48 h of live time) share half its weight
# equally, later ones the other half, decreasing (docs/decisions.md, "Late degradations").
LANE_S = 600.0
FINE_LANE_S = 30.0
FAMILIES = {"coarse": (LANE_S, 288), "fine": (FINE_LANE_S, 5760)}
WEIGHTS = {"coarse": 0.25, "fine": 0.75}


def lane_log_weight(k: int, family: str = "coarse") -> float:
    """log w_k of lane k (0-based) of a family; the weights sum to 1 over both families and all k."""
    if k < 0:
        raise ValueError(f"lane index must be >= 0, got {k}")
    big_k = FAMILIES[family][1]
    share = WEIGHTS[family] / 2
    if share <= 0:
        return -math.inf
    if k < big_k:
        return math.log(share / big_k)
    # sum_{k >= K} K / (k (k + 1)) = 1, so this tail carries the other half of the family's weight.
    return math.log(share * big_k / (k * (k + 1.0)))


def _alternatives(p0):
    """Alternatives above a null rate p0, capped halfway between p0 and 1 (shape (..., G))."""
    p0 = np.asarray(p0, dtype=float)[..., None]
    return np.minimum(p0 * RATIOS, (1.0 + p0) / 2.0)


def one_sample_increment(x, n, p0):
    """Log likelihood ratios of x events in n trials: each alternative p1 against the null rate p0.

    Under any rate <= p0 the exponential of each is a non-negative supermartingale increment with
    mean <= 1 (monotone likelihood ratio of the binomial)."""
    x = np.asarray(x, dtype=float)[..., None]
    n = np.asarray(n, dtype=float)[..., None]
    p0 = np.asarray(p0, dtype=float)
    if np.any((p0 <= 0) | (p0 >= 1)):
        raise ValueError("a null rate must lie strictly between 0 and 1")
    p1 = _alternatives(p0)
    p0 = p0[..., None]
    return x * np.log(p1 / p0) + (n - x) * np.log((1.0 - p1) / (1.0 - p0))


def two_sample_increment(x, n, y, m, rho0=1.0):
    """Log likelihood ratios that the candidate's error rate is rho * the control's, rho > rho0.

    x errors in the candidate's n requests, y in the control's m, over the same interval. Given the
    x + y errors, each fell on the candidate with probability pi(rho) = rho n / (rho n + m)
    (Poisson rates with exposures n and m); the unknown common rate cancels, so the test needs
    neither rate, and a control with zero errors is just y = 0. Binomial counts are less dispersed
    than Poisson ones, which only makes the test conservative. No control or no candidate traffic in
    the interval: no evidence (0)."""
    x = np.asarray(x, dtype=float)[..., None]
    n = np.asarray(n, dtype=float)[..., None]
    y = np.asarray(y, dtype=float)[..., None]
    m = np.asarray(m, dtype=float)[..., None]
    rho0 = np.asarray(rho0, dtype=float)[..., None]
    informative = (n > 0) & (m > 0)
    n_safe = np.where(informative, n, 1.0)
    m_safe = np.where(informative, m, 1.0)
    pi0 = rho0 * n_safe / (rho0 * n_safe + m_safe)
    rho1 = rho0 * RATIOS
    pi1 = rho1 * n_safe / (rho1 * n_safe + m_safe)
    inc = x * np.log(pi1 / pi0) + y * np.log((1.0 - pi1) / (1.0 - pi0))
    return np.where(informative, inc, 0.0)


def new_test(shape=()):
    """The state of one guardrail's test before any data: S (cumulative log LR per alternative) and
    B (per alternative, the best lane's log weight minus S at its start)."""
    shape = tuple(np.shape(np.zeros(shape))) + (len(RATIOS),)
    return np.zeros(shape), np.full(shape, -np.inf)


def open_lane(S, B, k: int, family: str = "coarse"):
    """Lane k of a family starts now: it counts the evidence from here on."""
    return np.maximum(B, lane_log_weight(k, family) - S)


def log_evidence(S, B):
    """log of the decision statistic: sum over alternatives of g_i * max over lanes of w_j LR_{j,i}.
    Breach when it reaches log(1 / alpha)."""
    terms = S + B + LOG_GRID_WEIGHT
    top = np.max(terms, axis=-1)
    safe = np.where(np.isfinite(top), top, 0.0)
    # Where no lane is open (top is -inf) the sum is 0 and its log is discarded by the where: no warning.
    with np.errstate(divide="ignore"):
        total = np.log(np.sum(np.exp(terms - safe[..., None]), axis=-1))
    return np.where(np.isfinite(top), safe + total, -np.inf)


def boundary(alpha) -> float:
    """The level log(1 / alpha) an e-process must reach to reject at false-alarm probability alpha."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    return math.log(1.0 / alpha)


def sprt_requests(p0: float, p1: float, alpha: float, errors) -> np.ndarray:
    """The information limit: requests a one-sided SPRT that knows both rates needs to reject p0 for
    p1 at false-alarm alpha (Wald 1945), given one 0/1 error indicator per request along the last
    axis; the horizon's length + 1 where it does not cross."""
    errors = np.asarray(errors, dtype=float)
    step = errors * math.log(p1 / p0) + (1 - errors) * math.log((1 - p1) / (1 - p0))
    path = np.cumsum(step, axis=-1)
    crossed = path >= boundary(alpha)
    first = np.argmax(crossed, axis=-1) + 1
    return np.where(crossed.any(axis=-1), first, errors.shape[-1] + 1)
