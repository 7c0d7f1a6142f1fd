"""Simulation harness: synthetic rollouts through the real guardrail evaluation, at the watch's cadence.

Run:  .venv/bin/python bench/guardrails.py [--runs 1000] [--seed 1] [--json]

The scenario (docs/decisions.md, "Proof by simulation"): a rollout on the default plan in front of
1,000 requests/min in all; the candidate gets its stage's share (50/min at canary 5 %), the
incumbent (the control) the rest, with the control's error rate at 2 %; the watch looks every 30 s.
Every look goes through `rollouts.decisions.look` with counts read through the guardrail registry
(`rollouts.guardrails`), the functions the watch calls, on arrays of all runs at once.

- Healthy: the candidate at 2 % errors (10 % escalations, 1 % of requests slower than the p95
  limit) through every live stage of the plan at its minimum duration: any rollback is false.
- A change: the candidate's error rate jumps to 4 % or 20 % when the canary starts, or ("late")
  after 2 h 05 min of health in it (mid-way between two lanes, so the late figure is not flattered
  by a lane opening at the moment of the change); detection is measured in the canary stage.
- Information limit (`oracle_median_requests`): the candidate requests a one-sided SPRT that knows
  both rates needs at the rollout's whole budget as its false-alarm rate.
- `naive`: a Flagger-style rule: every 60 s, error rate over the interval above 5 % is a failed
  check; roll back after 5 failed checks.
- Segments: 12 shadow segments at 90 % agreement watched 24 h to 300 pairs each; flagged by the
  real `telemetry.statistics.flag_segments`, once, at stabilization (the rule of rollouts/gates.py);
  power with one segment at 80 %.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import django  # noqa: E402
from django.apps import apps  # noqa: E402

if not apps.ready:  # run as a script (the tests import it with their own settings)
    if "DJANGO_SETTINGS_MODULE" not in os.environ:
        os.environ["DJANGO_SETTINGS_MODULE"] = "rolloutops.settings"
        os.environ.pop("DATABASE_URL", None)  # pure computation: no database is touched
    django.setup()

from rollouts import decisions, guardrails  # noqa: E402
from rollouts.models import StageMode  # noqa: E402
from rollouts.stages import default_plan  # noqa: E402
from telemetry import sequential, statistics  # noqa: E402

TOTAL_PER_MIN = 1000
LOOK_S = 30
CONTROL_ERROR = 0.02
ESCALATION = 0.10
SLOW = 0.01
LATE_S = 2 * 3600 + 5 * 60
MAX_CANARY_S = 24 * 3600


def _binomial(rng, n, p, runs):
    return rng.binomial(int(n), p, size=runs) if n else np.zeros(runs, dtype=np.int64)


class Arm:
    def __init__(self, runs):
        self.requests = np.zeros(runs)
        self.errors = np.zeros(runs)
        self.escalations = np.zeros(runs)
        self.timed = np.zeros(runs)
        self.slow = np.zeros(runs)


def simulate_stage(rng, runs, stage, *, state, t0, duration_s, candidate_rate, alphas, alive):
    """Look every 30 s for `duration_s` (or until every run rolled back); `candidate_rate(t)` gives the
    candidate's error rate `t` seconds into the stage. Returns (state, rolled_back_at, now): the
    stage-relative second of each run's rollback (inf: none)."""
    share = stage.traffic_percent / 100.0
    n = TOTAL_PER_MIN * share * LOOK_S / 60
    m = TOTAL_PER_MIN * (1 - share) * LOOK_S / 60
    cand, ctrl = Arm(runs), Arm(runs)
    plan = stage.guardrails
    tested = [k for k in alphas if k in plan]
    nulls = {k: guardrails.BY_KEY[k].null(float(plan[k]), plan) for k in tested}
    bounds = {k: math.log(1 / alphas[k]) for k in tested}
    rolled = np.full(runs, np.inf)
    t = 0.0
    while t < duration_s:
        t += LOOK_S
        p = candidate_rate(t)
        for arm, size, rate in ((cand, n, p), (ctrl, m, CONTROL_ERROR)):
            arm.requests += size
            arm.timed += size
            arm.errors += _binomial(rng, size, rate, runs)
        cand.escalations += _binomial(rng, n, ESCALATION, runs)
        cand.slow += _binomial(rng, n, SLOW, runs)
        metrics = SimpleNamespace(candidate=cand, control=ctrl, pairs=np.zeros(runs), agreements=np.zeros(runs),
                                  p95_latency_ms=None)
        counts = {k: guardrails.BY_KEY[k].counts(metrics) for k in tested}
        state, evidence = decisions.look(state, stage=stage.name, now_s=t0 + t, counts=counts, nulls=nulls,
                                         shape=(runs,))
        breach = np.zeros(runs, dtype=bool)
        for k in tested:
            breach |= evidence[k] >= bounds[k]
        newly = breach & alive & np.isinf(rolled)
        rolled[newly] = t
        alive = alive & ~newly
        if not alive.any():
            break
    return state, rolled, t0 + t, alive


def naive_stage(rng, runs, stage, *, duration_s, candidate_rate, failed):
    """Flagger's rule: every 60 s the interval's error rate above 5 % is a failed check; 5 roll back."""
    n = int(TOTAL_PER_MIN * stage.traffic_percent / 100.0)
    rolled = np.full(runs, np.inf)
    t = 0.0
    while t < duration_s:
        t += 60
        errors = _binomial(rng, n, candidate_rate(t), runs)
        failed = failed + (errors / n > 0.05)
        newly = (failed >= 5) & np.isinf(rolled)
        rolled[newly] = t
        if np.isfinite(rolled).all():
            break
    return rolled, failed


def live_stages():
    return [s for s in default_plan() if s.mode == StageMode.LIVE]


def healthy_rollouts(rng, runs, budget):
    stages = live_stages()
    alphas = guardrails.budget_shares(stages, budget)
    state, now, alive = None, 0.0, np.ones(runs, dtype=bool)
    naive_failed, naive_rolled = np.zeros(runs), np.zeros(runs, dtype=bool)
    for stage in stages:
        state, rolled, now, alive = simulate_stage(rng, runs, stage, state=state, t0=now, duration_s=stage.min_duration_s,
                                                   candidate_rate=lambda t: CONTROL_ERROR, alphas=alphas, alive=alive)
        # Flagger counts failed checks per analysis; we keep its count across the stages, as it would.
        r, naive_failed = naive_stage(rng, runs, stage, duration_s=stage.min_duration_s,
                                      candidate_rate=lambda t: CONTROL_ERROR, failed=naive_failed)
        naive_rolled |= np.isfinite(r)
    return (~alive).mean(), naive_rolled.mean(), alphas


def oracle_requests(rng, runs, p1, budget):
    horizon = 200_000 if p1 < 0.1 else 5_000
    median = []
    for chunk in range(0, runs, 100):
        size = min(100, runs - chunk)
        errors = rng.random((size, horizon)) < p1
        median.extend(sequential.sprt_requests(CONTROL_ERROR, p1, budget, errors).tolist())
    return float(np.median(median))


def detection(rng, runs, p1, late, budget):
    stages = live_stages()
    canary = stages[0]
    alphas = guardrails.budget_shares(stages, budget)
    change = LATE_S if late else 0.0

    def rate(t):
        return p1 if t > change else CONTROL_ERROR

    _, rolled, _, _ = simulate_stage(rng, runs, canary, state=None, t0=0.0, duration_s=change + MAX_CANARY_S,
                                     candidate_rate=rate, alphas=alphas, alive=np.ones(runs, dtype=bool))
    false_before = float((rolled <= change).mean())
    delay = np.where(rolled > change, rolled - change, np.inf)
    per_min = TOTAL_PER_MIN * canary.traffic_percent / 100.0
    naive, _ = naive_stage(rng, runs, canary, duration_s=change + MAX_CANARY_S, candidate_rate=rate, failed=np.zeros(runs))
    naive_delay = np.where(naive > change, naive - change, np.inf)
    return delay, per_min, false_before, naive_delay


def summarize(delay_s, per_min, oracle):
    finite = delay_s[np.isfinite(delay_s)]
    # "inverted_cdf": an observed value, never an interpolation between two runs that never detected (inf).
    med = float(np.quantile(delay_s, 0.5, method="inverted_cdf")) / 60
    p95 = float(np.quantile(delay_s, 0.95, method="inverted_cdf")) / 60
    out = {
        "median_min": round(med, 2) if math.isfinite(med) else None,
        "p95_min": round(p95, 2) if math.isfinite(p95) else None,
        "median_requests": round(med * per_min, 1) if math.isfinite(med) else None,
        "oracle_median_requests": oracle,
        "ratio": round(med * per_min / oracle, 2) if math.isfinite(med) else None,
        "detected": round(len(finite) / len(delay_s), 4),
    }
    return out


def segments(rng, runs, *, low=None, count=12, pairs_each=300, agreement=0.90, looks=30):
    """Fraction of runs with a flagged segment at the decision (and provisionally at any hourly look)."""
    final_flagged, provisional_any, low_found = 0, 0, 0
    per_look = pairs_each // looks
    for _ in range(runs):
        rates = [agreement] * count
        if low is not None:
            rates[0] = low
        agree = np.zeros(count, dtype=int)
        pairs = np.zeros(count, dtype=int)
        seen_provisional = False
        result = {}
        for _look in range(looks):
            agree += rng.binomial(per_look, rates)
            pairs += per_look
            result = statistics.flag_segments({f"s{i}": (int(agree[i]), int(pairs[i])) for i in range(count)})
            seen_provisional |= any(r.flagged for r in result.values())
        flagged = {name for name, r in result.items() if r.flagged}
        final_flagged += bool(flagged - {"s0"}) if low is not None else bool(flagged)
        low_found += "s0" in flagged
        provisional_any += seen_provisional
    return final_flagged / runs, provisional_any / runs, low_found / runs


def clopper_pearson_upper(k: int, n: int, level: float = 0.95) -> float:
    """One-sided upper bound of a binomial proportion (bisection on the exact tail)."""
    if k >= n:
        return 1.0
    lo, hi = k / n, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if statistics.regularized_incomplete_beta(mid, k + 1, n - k) < level:
            lo = mid
        else:
            hi = mid
    return hi


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--budget", type=float, default=0.01)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    runs, budget = args.runs, args.budget

    false_rate, naive_false, alphas = healthy_rollouts(rng, runs, budget)
    false_k = round(false_rate * runs)
    result = {
        "runs": runs, "seed": args.seed, "error_budget": budget, "budget_shares": alphas,
        "false_rollback_rate": false_rate,
        "false_rollback_upper_95": round(clopper_pearson_upper(false_k, runs), 4),
        "detection": {}, "naive": {"false_rollback_rate": float(naive_false), "detection": {}},
    }
    for p1 in (0.04, 0.20):
        oracle = oracle_requests(rng, min(runs, 1000), p1, budget)
        for late in (False, True):
            name = f"2->{round(p1 * 100)}" + ("_late" if late else "")
            delay, per_min, false_before, naive_delay = detection(rng, runs, p1, late, budget)
            result["detection"][name] = summarize(delay, per_min, oracle) | (
                {"false_before_change": false_before} if late else {})
            result["naive"]["detection"][name] = summarize(naive_delay, per_min, oracle)
    for kind in ("2->4", "2->20"):
        early, late = result["detection"][kind]["median_min"], result["detection"][kind + "_late"]["median_min"]
        result["detection"][kind + "_late"]["late_over_early"] = round(late / early, 2) if early and late else None
    seg_runs = runs
    false_flag, provisional, _ = segments(rng, seg_runs)
    _, _, power = segments(rng, seg_runs, low=0.80)
    result["segment_false_flag_rate"] = false_flag
    result["segment_provisional_any_rate"] = provisional
    result["segment_power"] = power
    result["segment_runs"] = seg_runs
    result["seconds"] = round(time.perf_counter() - started, 1)

    if not args.json:
        print(f"{runs} simulated rollouts, budget {budget:.0%}, shares {alphas}")
        print(f"false rollback over the whole plan: {false_rate:.2%} (95 % upper bound "
              f"{result['false_rollback_upper_95']:.2%}); naive rule: {naive_false:.1%}")
        for name, d in result["detection"].items():
            n = result["naive"]["detection"][name]
            print(f"  {name:10s} median {d['median_min']} min, p95 {d['p95_min']} min, {d['median_requests']} requests "
                  f"(oracle {d['oracle_median_requests']}, ratio {d['ratio']}); naive median {n['median_min']} min")
        print(f"segments: false flag {false_flag:.1%} (provisional at some look {provisional:.1%}), "
              f"power at 90 -> 80 % with 300 pairs {power:.1%}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
