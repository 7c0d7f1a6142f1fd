"""The plan editor of the rollout page: a staging rollout's stages as form rows, the rows back to the
plan that rollouts.stages.parse_plan validates (the same rules as PUT /api/v1/rollouts/{id}/plan),
and each of its problems back to the field it names. Pure: no database."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .models import StageMode
from .stages import DEFAULT_GUARDRAILS, DEFAULT_INCONCLUSIVE_AFTER_S

HOUR = 3600
# The row fields, in the order of the form's columns. Durations are edited in hours (what people
# plan in), everything else in the API's own units.
FIELDS = ("name", "mode", "traffic_percent", "min_duration_h", "min_samples", "agreement_bar", "inconclusive_after_s")
# A problem of parse_plan: "plan[2] (canary).guardrails.max_error_rate: a rate strictly between…".
_PROBLEM = re.compile(r"^plan\[(?P<index>\d+)\](?: \(.*?\))?(?:\.(?P<field>[\w.]+))?: (?P<text>.*)$", re.S)
# The API's field names where the form's differ.
_FORM_FIELD = {"min_duration_s": "min_duration_h"}


def guardrail_keys(stages) -> list[str]:
    """The guardrail keys the editor offers: every key the plan rules know (their defaults), then any
    other the rollout's stages carry, in the order first seen. Read from the plan, never a fixed list."""
    keys = list(DEFAULT_GUARDRAILS)
    for stage in stages:
        for key in (stage.guardrails or {}):
            if key not in keys:
                keys.append(key)
    return keys


def _number(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def rows_from_stages(stages) -> list[dict]:
    """The editor's rows for a plan as stored (RolloutStage rows or StagePlan)."""
    return [{
        "name": stage.name,
        "mode": stage.mode,
        "traffic_percent": _number(stage.traffic_percent),
        "min_duration_h": _number(round(stage.min_duration_s / HOUR, 4)) if stage.min_duration_s else "0",
        "min_samples": _number(stage.min_samples),
        "agreement_bar": _number(stage.agreement_bar),
        "inconclusive_after_s": _number(stage.inconclusive_after_s),
        "guardrails": {key: _number(value) for key, value in (stage.guardrails or {}).items()},
    } for stage in stages]


def rows_from_post(data, keys: list[str]) -> list[dict]:
    """The rows as typed (strings), so a refused plan comes back exactly as the person left it."""
    try:
        count = min(int(data.get("stages", 0)), 50)
    except (TypeError, ValueError):
        count = 0
    rows = []
    for i in range(count):
        prefix = f"stage-{i}-"
        row = {name: (data.get(prefix + name) or "").strip() for name in FIELDS}
        row["guardrails"] = {key: (data.get(f"{prefix}guardrails.{key}") or "").strip() for key in keys}
        rows.append(row)
    return rows


def blank_row() -> dict:
    """A new live stage, with the rules' defaults as placeholders rather than values."""
    return {"name": "", "mode": StageMode.LIVE, "traffic_percent": "", "min_duration_h": "", "min_samples": "",
            "agreement_bar": "", "inconclusive_after_s": "", "guardrails": {}}


def _parsed(text: str, *, integer: bool = False):
    """A number when the text is one, else the text itself, for parse_plan to name as not a number."""
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        return text
    return int(value) if integer and value.is_integer() else value


def plan_from_rows(rows: list[dict]) -> list[dict]:
    """The plan (a list of stage dicts) the rows describe; empty fields take the rules' defaults."""
    plan = []
    for row in rows:
        stage = {"name": row["name"], "mode": row["mode"]}
        if row["traffic_percent"]:
            stage["traffic_percent"] = _parsed(row["traffic_percent"])
        if row["min_duration_h"]:
            hours = _parsed(row["min_duration_h"])
            stage["min_duration_s"] = round(hours * HOUR) if isinstance(hours, float) else hours
        if row["min_samples"]:
            stage["min_samples"] = _parsed(row["min_samples"], integer=True)
        if row["agreement_bar"]:
            stage["agreement_bar"] = _parsed(row["agreement_bar"])
        if row["inconclusive_after_s"]:
            stage["inconclusive_after_s"] = _parsed(row["inconclusive_after_s"], integer=True)
        guardrails = {key: _parsed(value) for key, value in row["guardrails"].items() if value}
        if guardrails:
            stage["guardrails"] = guardrails
        plan.append(stage)
    return plan


@dataclass
class PlanErrors:
    """parse_plan's problems placed where they belong: on a field of a row, on a row, or on the plan."""

    fields: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    rows: dict[int, list[str]] = field(default_factory=dict)
    plan: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.rows or self.plan)

    def count(self) -> int:
        return sum(map(len, self.fields.values())) + sum(map(len, self.rows.values())) + len(self.plan)


def place_errors(problems: list[str], row_count: int) -> PlanErrors:
    errors = PlanErrors()
    for problem in problems:
        match = _PROBLEM.match(problem)
        if not match or int(match["index"]) >= row_count:
            errors.plan.append(problem)
            continue
        index, name, text = int(match["index"]), match["field"], match["text"]
        name = _FORM_FIELD.get(name, name)
        if name and (name in FIELDS or name.startswith("guardrails.")):
            errors.fields.setdefault((index, name), []).append(text)
        else:
            errors.rows.setdefault(index, []).append(f"{name}: {text}" if name else text)
    return errors


def table(rows: list[dict], keys: list[str], errors: PlanErrors | None = None) -> list[dict]:
    """What the template draws: each row's cells with their value, placeholder and errors."""
    errors = errors or PlanErrors()
    out = []
    for i, row in enumerate(rows):
        live = row["mode"] == StageMode.LIVE

        def cell(name, value, placeholder=""):
            return {"name": f"stage-{i}-{name}", "value": value, "placeholder": placeholder,
                    "errors": errors.fields.get((i, name), []), "id": f"stage-{i}-{name.replace('.', '-')}"}

        out.append({
            "index": i,
            "row": row,
            "live": live,
            "cells": {
                "name": cell("name", row["name"]),
                "mode": cell("mode", row["mode"]),
                "traffic_percent": cell("traffic_percent", row["traffic_percent"], "0"),
                "min_duration_h": cell("min_duration_h", row["min_duration_h"], "0"),
                "min_samples": cell("min_samples", row["min_samples"], "0"),
                "agreement_bar": cell("agreement_bar", row["agreement_bar"]),
                "inconclusive_after_s": cell("inconclusive_after_s", row["inconclusive_after_s"],
                                             str(DEFAULT_INCONCLUSIVE_AFTER_S) if live else ""),
            },
            "guardrails": [cell(f"guardrails.{key}", row["guardrails"].get(key, ""),
                                _number(DEFAULT_GUARDRAILS.get(key)) if live else "") | {"key": key}
                           for key in keys],
            "errors": errors.rows.get(i, []),
        })
    return out
