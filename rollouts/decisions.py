"""One look of the guardrail watch, as a pure function: the state of every guardrail's sequential
test, advanced by the counts that arrived since the last look.

The watch (monitor.py) calls `look` every 30 s with a rollout's stage counts and keeps the state in
GuardrailState; gates, the API and the pages call it without keeping the result; the simulation
harness (bench/guardrails.py) calls it with arrays of a thousand rollouts at once. The rules are in
docs/decisions.md, "Automatic rollback".
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from telemetry import sequential

from .guardrails import BY_KEY, VS_CONTROL

# How many points of each guardrail's evidence the state keeps for the chart (one per TRACE_EVERY_S).
TRACE_POINTS = 600
TRACE_EVERY_S = 300
MAX_STEP_S = 120.0


@dataclass
class WatchState:
    stage: str | None = None
    counts: dict = field(default_factory=dict)  # key -> the stage's cumulative counts at the last look
    live_s: float = 0.0  # live time looked at so far (lanes open on it)
    last_s: float | None = None  # when the last look was (seconds, any epoch)
    lanes: dict = field(default_factory=dict)  # family -> lanes opened so far (telemetry.sequential.FAMILIES)
    tests: dict = field(default_factory=dict)  # key -> (S, B) of telemetry.sequential
    trace: list = field(default_factory=list)  # [t, stage, {key: log e}] for the chart

    def copy(self) -> WatchState:
        return replace(self, counts=dict(self.counts), tests=dict(self.tests), trace=list(self.trace))


def look(state: WatchState | None, *, stage: str, now_s: float, counts: dict, nulls: dict,
         shape=()) -> tuple[WatchState, dict]:
    """Advance the tests by the counts that arrived since the last look; returns the new state and
    each guardrail's log e-value. `counts`: key -> the stage's cumulative counts (a tuple of numbers
    or arrays of `shape`); `nulls`: key -> the null of its test in this stage. Pure: `state` is not
    changed."""
    state = WatchState() if state is None else state.copy()
    if state.last_s is not None:
        # Live time advances by the looks' cadence: a watch that was down (or a pause) does not
        # open a burst of lanes when it resumes.
        state.live_s += min(max(now_s - state.last_s, 0.0), MAX_STEP_S)
    state.last_s = now_s
    if state.stage != stage:  # a new stage: its counts start from zero
        state.stage = stage
        state.counts = {}
    # Lanes open before this look's evidence: lane k counts what arrived from its start on.
    state.lanes = dict(state.lanes)
    for family, (every_s, _) in sequential.FAMILIES.items():
        while state.lanes.get(family, 0) * every_s <= state.live_s:
            k = state.lanes.get(family, 0)
            for key, (S, B) in state.tests.items():
                state.tests[key] = (S, sequential.open_lane(S, B, k, family))
            state.lanes[family] = k + 1
    evidence = {}
    for key, current in counts.items():
        current = tuple(np.array(c, dtype=float) for c in current)  # a copy: callers may add to theirs
        previous = state.counts.get(key, tuple(np.zeros(shape) for _ in current))
        delta = tuple(np.maximum(c - p, 0.0) for c, p in zip(current, previous))
        state.counts[key] = current
        if key not in state.tests:
            # A guardrail first tested now: every lane opened so far starts here; the heaviest stands for them.
            S, B = sequential.new_test(shape)
            state.tests[key] = (S, sequential.open_lane(S, B, 0, "coarse"))
        S, B = state.tests[key]
        if BY_KEY[key].test == VS_CONTROL:
            S = S + sequential.two_sample_increment(*delta, rho0=nulls[key])
        else:
            S = S + sequential.one_sample_increment(*delta, p0=nulls[key])
        state.tests[key] = (S, B)
        evidence[key] = sequential.log_evidence(S, B)
    return state, evidence


def traced(state: WatchState, evidence: dict, *, now_s: float) -> WatchState:
    """Keep one point of evidence per TRACE_EVERY_S for the chart (scalars only)."""
    if state.trace and now_s - state.trace[-1][0] < TRACE_EVERY_S:
        return state
    point = [now_s, state.stage, {k: round(float(v), 3) for k, v in evidence.items() if np.isfinite(v)}]
    state.trace = (state.trace + [point])[-TRACE_POINTS:]
    return state


def to_json(state: WatchState) -> dict:
    return {
        "v": 1, "stage": state.stage, "live_s": state.live_s, "last_s": state.last_s, "lanes": state.lanes,
        "counts": {k: [float(c) for c in v] for k, v in state.counts.items()},
        "tests": {k: [np.asarray(S).tolist(), np.where(np.isfinite(B), B, -1e300).tolist()]
                  for k, (S, B) in state.tests.items()},
        "trace": state.trace,
    }


def from_json(data: dict | None) -> WatchState | None:
    if not data:
        return None
    return WatchState(
        stage=data.get("stage"), live_s=float(data.get("live_s", 0.0)), last_s=data.get("last_s"),
        lanes={k: int(v) for k, v in (data.get("lanes") or {}).items()},
        counts={k: tuple(np.asarray(c, dtype=float) for c in v) for k, v in data.get("counts", {}).items()},
        tests={k: (np.asarray(S, dtype=float), np.asarray(B, dtype=float)) for k, (S, B) in data.get("tests", {}).items()},
        trace=list(data.get("trace", [])),
    )
