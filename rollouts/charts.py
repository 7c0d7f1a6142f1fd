"""Plotly figures of a rollout's live guardrails as pure functions: hourly figures in, figure dict out."""
from __future__ import annotations

from .models import TransitionAction

_ERROR = "#c0392b"
_ESCALATION = "#b35900"
_THRESHOLD = "#6b7280"
_MARK = {TransitionAction.PROMOTE: "#2f7d4f", TransitionAction.ROLLBACK: "#c0392b", TransitionAction.PAUSE: "#b35900",
         TransitionAction.RESUME: "#2457c5", TransitionAction.COMPLETE: "#2f7d4f"}


def guardrail_timeline(hourly: list[dict], *, thresholds: dict, marks: list[dict]) -> dict:
    """Hourly error and escalation rates of the agent's live traffic, each guardrail threshold as a
    dashed line, and every transition (promotion, rollback…) as a vertical marker."""
    hours = [row["hour"] for row in hourly]
    data = [
        {"type": "scatter", "mode": "lines+markers", "name": "error rate", "x": hours, "line": {"color": _ERROR},
         "y": [row["errors"] / row["events"] if row["events"] else None for row in hourly],
         "customdata": [[row["events"], row["stage"]] for row in hourly],
         "hovertemplate": "%{x}<br>error rate %{y:.1%}<br>%{customdata[0]} requests in %{customdata[1]}<extra></extra>"},
        {"type": "scatter", "mode": "lines+markers", "name": "escalation rate", "x": hours,
         "line": {"color": _ESCALATION},
         "y": [row["escalations"] / row["events"] if row["events"] else None for row in hourly],
         "hovertemplate": "%{x}<br>escalation rate %{y:.1%}<extra></extra>"},
    ]
    shapes, annotations = [], []
    for name, label, color in (("max_error_rate", "max error rate", _ERROR), ("max_escalation_rate", "max escalation rate", _ESCALATION)):
        if thresholds.get(name) is not None:
            value = float(thresholds[name])
            shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": value, "y1": value,
                           "line": {"color": color, "dash": "dash", "width": 1}})
            annotations.append({"xref": "paper", "x": 0, "y": value, "yref": "y", "text": f"{label} {value:.0%}",
                                "showarrow": False, "xanchor": "left", "yanchor": "bottom", "font": {"color": color, "size": 11}})
    for mark in marks:
        color = _MARK.get(mark["action"], _THRESHOLD)
        shapes.append({"type": "line", "yref": "paper", "y0": 0, "y1": 1, "xref": "x", "x0": mark["at"], "x1": mark["at"],
                       "line": {"color": color, "width": 2 if mark["action"] == TransitionAction.ROLLBACK else 1,
                                "dash": "solid" if mark["action"] == TransitionAction.ROLLBACK else "dot"}})
        annotations.append({"xref": "x", "x": mark["at"], "yref": "paper", "y": 1, "text": mark["text"], "showarrow": False,
                            "textangle": -90, "xanchor": "right", "yanchor": "top", "font": {"color": color, "size": 10}})
    return {
        "data": data,
        "layout": {
            "title": {"text": "Live guardrails per hour (dashed: thresholds; markers: transitions)", "font": {"size": 14}},
            "margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "height": 300,
            "legend": {"orientation": "h", "y": -0.2},
            "yaxis": {"tickformat": ".0%", "rangemode": "tozero"}, "xaxis": {"type": "date"},
            "shapes": shapes, "annotations": annotations,
        },
    }
