"""The default stage plan, plan validation and the transition table: pure, no database."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from rolloutops.exceptions import Invalid

from . import guardrails as registry
from .models import RolloutState, StageMode, TransitionAction

HOUR = 3600

# Guardrails a live stage is held to unless the plan says otherwise: the registry's defaults.
DEFAULT_GUARDRAILS = registry.DEFAULT_GUARDRAILS
GUARDRAIL_KEYS = registry.PLAN_KEYS
DEFAULT_AGREEMENT_BAR = 0.90
# A live stage that hears nothing from the agent for this long is paused as inconclusive.
DEFAULT_INCONCLUSIVE_AFTER_S = 600
MIN_INCONCLUSIVE_AFTER_S = 60


@dataclass
class StagePlan:
    name: str
    mode: str
    traffic_percent: float = 0
    min_duration_s: int = 0
    min_samples: int = 0
    agreement_bar: float | None = None
    guardrails: dict = field(default_factory=dict)
    inconclusive_after_s: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _live(name: str, traffic: float, duration_s: int, samples: int) -> StagePlan:
    return StagePlan(name, StageMode.LIVE, traffic, duration_s, samples, guardrails=dict(DEFAULT_GUARDRAILS),
                     inconclusive_after_s=DEFAULT_INCONCLUSIVE_AFTER_S)


def default_plan() -> list[StagePlan]:
    """The default plan (docs/decisions.md): full traffic bakes a day on 1,000 samples before the
    candidate becomes the incumbent; nothing completes on silence."""
    return [
        StagePlan("staging", StageMode.OFF, 0, 0, 0),
        StagePlan("shadow", StageMode.SHADOW, 0, 24 * HOUR, 500, agreement_bar=DEFAULT_AGREEMENT_BAR),
        _live("canary", 5, 2 * HOUR, 200),
        _live("expand-10", 10, 2 * HOUR, 200),
        _live("expand-25", 25, 4 * HOUR, 500),
        _live("expand-50", 50, 4 * HOUR, 500),
        _live("full", 100, 24 * HOUR, 1000),
    ]


def parse_plan(raw: list[dict] | None) -> list[StagePlan]:
    """Validate a plan from the API or a form; every problem is named with its stage index."""
    if raw is None:
        return default_plan()
    if not isinstance(raw, list) or len(raw) < 2:
        raise Invalid("a plan is a list of at least two stages, the first being staging")
    problems: list[str] = []
    stages: list[StagePlan] = []
    names: set[str] = set()
    last_traffic = -1.0
    for index, item in enumerate(raw):
        where = f"plan[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: a stage is an object")
            continue
        name = str(item.get("name", "")).strip()
        mode = item.get("mode")
        if not name or len(name) > 40:
            problems.append(f"{where}.name: required, at most 40 characters")
        elif name in names:
            problems.append(f"{where}.name: {name!r} appears twice")
        names.add(name)
        if mode not in StageMode.values:
            problems.append(f"{where}.mode: must be one of off, shadow, live")
        if name:
            where = f"plan[{index}] ({name})"
        try:
            traffic = float(item.get("traffic_percent", 0))
            duration = int(item.get("min_duration_s", 0))
            samples = int(item.get("min_samples", 0))
            bar = item.get("agreement_bar")
            bar = None if bar is None else float(bar)
            silence = item.get("inconclusive_after_s")
            silence = None if silence is None else int(silence)
        except (TypeError, ValueError, OverflowError):
            problems.append(f"{where}: traffic_percent, min_duration_s, min_samples, agreement_bar and "
                            "inconclusive_after_s are numbers")
            continue
        if mode == StageMode.LIVE:
            if silence is None:
                silence = DEFAULT_INCONCLUSIVE_AFTER_S
            elif silence < MIN_INCONCLUSIVE_AFTER_S:
                problems.append(f"{where}.inconclusive_after_s: at least {MIN_INCONCLUSIVE_AFTER_S} s")
        elif silence is not None:
            problems.append(f"{where}.inconclusive_after_s: only live stages are paused for silence")
            silence = None
        if not 0 <= traffic <= 100:
            problems.append(f"{where}.traffic_percent: between 0 and 100")
        if mode in (StageMode.OFF, StageMode.SHADOW) and traffic != 0:
            problems.append(f"{where}.traffic_percent: a {mode} stage sends no traffic to the agent (0)")
        if mode == StageMode.LIVE and traffic <= 0:
            problems.append(f"{where}.traffic_percent: a live stage sends some traffic (> 0)")
        if mode == StageMode.LIVE and traffic < last_traffic:
            problems.append(f"{where}.traffic_percent: live stages only widen traffic ({traffic} < {last_traffic})")
        if mode == StageMode.LIVE:
            last_traffic = traffic
        if duration < 0 or samples < 0:
            problems.append(f"{where}: min_duration_s and min_samples are ≥ 0")
        if bar is not None and not 0 <= bar <= 1:
            problems.append(f"{where}.agreement_bar: between 0 and 1")
        if mode == StageMode.SHADOW and bar is None:
            bar = DEFAULT_AGREEMENT_BAR
        guardrails = item.get("guardrails") or {}
        if not isinstance(guardrails, dict):
            problems.append(f"{where}.guardrails: an object")
            guardrails = {}
        unknown = set(guardrails) - GUARDRAIL_KEYS
        if unknown:
            problems.append(f"{where}.guardrails: unknown {', '.join(sorted(unknown))}; known: {', '.join(sorted(GUARDRAIL_KEYS))}")
        for key, value in guardrails.items():
            if key not in GUARDRAIL_KEYS:
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                problems.append(f"{where}.guardrails.{key}: a number")
            elif problem := registry.validate_plan_value(key, value):
                problems.append(f"{where}.guardrails.{key}: {problem}")
        if mode == StageMode.LIVE:
            guardrails = {**DEFAULT_GUARDRAILS, **guardrails}
        stages.append(StagePlan(name, mode, traffic, duration, samples, bar, guardrails, silence))
    if stages and (stages[0].name != "staging" or stages[0].mode != StageMode.OFF):
        problems.append("plan[0]: the first stage is staging (mode off)")
    if any(s.mode == StageMode.OFF for s in stages[1:]):
        problems.append("plan: only the first stage (staging) is off")
    if problems:
        raise Invalid(problems if len(problems) > 1 else problems[0], errors=problems)
    return stages


# Which actions each state allows: one table, read by services and pages alike.
TRANSITIONS: dict[str, dict[str, str]] = {
    RolloutState.ACTIVE: {
        TransitionAction.PROMOTE: RolloutState.ACTIVE,
        TransitionAction.COMPLETE: RolloutState.COMPLETED,
        TransitionAction.PAUSE: RolloutState.PAUSED,
        TransitionAction.ROLLBACK: RolloutState.ROLLED_BACK,
    },
    RolloutState.PAUSED: {
        TransitionAction.RESUME: RolloutState.ACTIVE,
        TransitionAction.ROLLBACK: RolloutState.ROLLED_BACK,
    },
    RolloutState.ROLLED_BACK: {},
    # A completed rollout's version is in production; an operator may revert production to the
    # version before it (agents' lineage), which ends this rollout's hold on production.
    RolloutState.COMPLETED: {TransitionAction.REVERT: RolloutState.REVERTED},
    RolloutState.REVERTED: {},
}


def allowed_actions(state: str) -> set[str]:
    return set(TRANSITIONS.get(state, {}))


def next_state(state: str, action: str) -> str | None:
    return TRANSITIONS.get(state, {}).get(action)
