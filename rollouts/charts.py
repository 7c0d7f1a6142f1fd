"""Plotly figures of a rollout's live guardrails as pure functions: figures in, figure dict out."""
from __future__ import annotations

from datetime import UTC, datetime

from .guardrails import REGISTRY
from .models import TransitionAction

_ERROR = "#c0392b"
_THRESHOLD = "#6b7280"
_MARK = {TransitionAction.PROMOTE: "#2f7d4f", TransitionAction.ROLLBACK: "#c0392b", TransitionAction.PAUSE: "#b35900",
         TransitionAction.RESUME: "#2457c5", TransitionAction.COMPLETE: "#2f7d4f"}


_EVIDENCE_COLORS = ["#c0392b", "#b35900", "#2457c5", "#7b3fa0", "#2f7d4f", "#6b7280"]


def evidence_traces(trace: list, boundaries: dict) -> list[dict]:
    """Each guardrail's evidence (log e-value) as a share of its boundary, over time: the statistic
    that decides, 1.0 being a breach (docs/decisions.md). `trace`: [[epoch s, stage, {key: log e}], …]."""
    data = []
    for i, g in enumerate(r for r in REGISTRY if r.key in boundaries):
        points = [(p[0], p[2][g.key]) for p in trace if g.key in p[2]]
        if not points:
            continue
        bound = boundaries[g.key]
        data.append({
            "type": "scatter", "mode": "lines+markers", "name": f"{g.label} (evidence)", "yaxis": "y",
            "x": [datetime.fromtimestamp(t, UTC).isoformat() for t, _ in points],
            "y": [round(max(v, 0.0) / bound, 4) for _, v in points],
            "line": {"color": _EVIDENCE_COLORS[i % len(_EVIDENCE_COLORS)], "width": 2},
            "hovertemplate": f"%{{x}}<br>{g.label}: %{{y:.0%}} of the way to a breach<extra></extra>",
        })
    return data


def guardrail_timeline(hourly: list[dict], *, thresholds: dict, marks: list[dict], trace: list | None = None,
                       boundaries: dict | None = None) -> dict:
    """On top, the statistic that decides: each guardrail's evidence against its boundary (1.0 = a
    breach, drawn as a line), every guardrail including latency. Below, secondary and labelled so: the
    raw hourly error, escalation and slow-request rates with their thresholds dashed. Every transition
    (promotion, rollback…) as a vertical marker."""
    hours = [row["hour"] for row in hourly]
    evidence = evidence_traces(trace or [], boundaries or {})
    raw_axis = "y2" if evidence else "y"
    data = list(evidence)
    shapes, annotations = [], []
    for i, g in enumerate(REGISTRY):
        if g.hourly is None or g.key not in thresholds:
            continue
        color = _EVIDENCE_COLORS[i % len(_EVIDENCE_COLORS)]
        data.append({
            "type": "scatter", "mode": "lines+markers", "name": f"{g.hourly_label} (raw hourly)", "x": hours,
            "line": {"color": color, "dash": "dot"}, "yaxis": raw_axis,
            "y": [g.hourly(row) for row in hourly],
            "customdata": [[row["events"], row["stage"]] for row in hourly],
            "hovertemplate": f"%{{x}}<br>{g.hourly_label} %{{y:.1%}}<br>%{{customdata[0]}} requests in %{{customdata[1]}}<extra></extra>",
        })
        level = g.hourly_threshold(float(thresholds[g.key]))
        if level is not None:
            shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": raw_axis, "y0": level, "y1": level,
                           "line": {"color": color, "dash": "dash", "width": 1}})
            annotations.append({"xref": "paper", "x": 0, "y": level, "yref": raw_axis, "text": f"{g.hourly_label} limit {level:.0%}",
                                "showarrow": False, "xanchor": "left", "yanchor": "bottom", "font": {"color": color, "size": 11}})
    for mark in marks:
        color = _MARK.get(mark["action"], _THRESHOLD)
        shapes.append({"type": "line", "yref": "paper", "y0": 0, "y1": 1, "xref": "x", "x0": mark["at"], "x1": mark["at"],
                       "line": {"color": color, "width": 2 if mark["action"] == TransitionAction.ROLLBACK else 1,
                                "dash": "solid" if mark["action"] == TransitionAction.ROLLBACK else "dot"}})
        annotations.append({"xref": "x", "x": mark["at"], "yref": "paper", "y": 1, "text": mark["text"], "showarrow": False,
                            "textangle": -90, "xanchor": "right", "yanchor": "top", "font": {"color": color, "size": 10}})
    layout = {
        "title": {"text": "Live guardrails (markers: transitions)", "font": {"size": 14}},
        "margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "height": 300,
        "legend": {"orientation": "h", "y": -0.2},
        "yaxis": {"tickformat": ".0%", "rangemode": "tozero"}, "xaxis": {"type": "date"},
        "shapes": shapes, "annotations": annotations,
    }
    if evidence:
        layout["height"] = 460
        layout["yaxis"] = {"title": {"text": "evidence / boundary"}, "tickformat": ".0%", "rangemode": "tozero",
                           "domain": [0.45, 1.0]}
        layout["yaxis2"] = {"title": {"text": "raw hourly (secondary)"}, "tickformat": ".0%", "rangemode": "tozero",
                            "domain": [0.0, 0.33], "anchor": "x"}
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": 1, "y1": 1,
                       "line": {"color": _ERROR, "width": 2}})
        annotations.append({"xref": "paper", "x": 1, "y": 1, "yref": "y", "text": "breach: rollback", "showarrow": False,
                            "xanchor": "right", "yanchor": "bottom", "font": {"color": _ERROR, "size": 11}})
        layout["title"]["text"] = ("Live guardrails: the evidence that decides, against its boundary (top); "
                                   "raw hourly figures, secondary (below)")
    return {"data": data, "layout": layout}
