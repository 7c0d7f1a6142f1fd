"""Plotly figures of the shadow comparison as pure functions: report data in, figure dict out."""
from __future__ import annotations

_OK = "#2f7d4f"
_BAD = "#c0392b"
_BAND = "rgba(47, 125, 79, 0.18)"
_BAR_LINE = "#8a6d00"


def _layout(title: str, **extra) -> dict:
    return {
        "title": {"text": title, "font": {"size": 14}},
        "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
        "height": 300,
        "showlegend": False,
        **extra,
    }


def _bar_shape(bar: float | None, *, horizontal: bool = True) -> list[dict]:
    if bar is None:
        return []
    if horizontal:
        return [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": bar, "y1": bar,
                 "line": {"color": _BAR_LINE, "dash": "dash", "width": 1.5}}]
    return [{"type": "line", "yref": "paper", "y0": 0, "y1": 1, "xref": "x", "x0": bar, "x1": bar,
             "line": {"color": _BAR_LINE, "dash": "dash", "width": 1.5}}]


def agreement_over_time(hourly: list[dict], *, bar: float | None, zone: str = "UTC") -> dict:
    """Hourly agreement with its Wilson 95 % band, and the promotion bar as a dashed line. The hours
    are wall-clock times in `zone` (plotly.js draws dates as given), which the axis names."""
    hours = [row["hour"] for row in hourly]
    data = [
        {"type": "scatter", "mode": "lines", "x": hours, "y": [row["high"] for row in hourly],
         "line": {"width": 0}, "hoverinfo": "skip", "name": "upper 95 %"},
        {"type": "scatter", "mode": "lines", "x": hours, "y": [row["low"] for row in hourly],
         "line": {"width": 0}, "fill": "tonexty", "fillcolor": _BAND, "hoverinfo": "skip", "name": "lower 95 %"},
        {"type": "scatter", "mode": "lines+markers", "x": hours, "y": [row["rate"] for row in hourly],
         "line": {"color": _OK}, "name": "agreement",
         "customdata": [[row["pairs"]] for row in hourly],
         "hovertemplate": "%{x}<br>agreement %{y:.1%}<br>%{customdata[0]} pairs<extra></extra>"},
    ]
    annotations = []
    if bar is not None:
        annotations.append({"xref": "paper", "x": 1, "y": bar, "yref": "y", "text": f"bar {bar:.0%}",
                            "showarrow": False, "xanchor": "right", "yanchor": "bottom", "font": {"color": _BAR_LINE}})
    return {
        "data": data,
        "layout": _layout("Agreement over time (Wilson 95 % band)",
                          yaxis={"range": [0, 1.02], "tickformat": ".0%"},
                          xaxis={"type": "date", "title": {"text": f"hour ({zone})"}},
                          shapes=_bar_shape(bar), annotations=annotations),
    }


def confusion_heatmap(confusion: dict) -> dict:
    """Rows = agent label, columns = human label; the diagonal is agreement."""
    labels = confusion["labels"]
    matrix = confusion["matrix"]
    return {
        "data": [{
            # plotly.js's Blues runs dark to light; reversed, more pairs read darker.
            "type": "heatmap", "x": labels, "y": labels, "z": matrix, "colorscale": "Blues", "reversescale": True,
            # Gaps between cells and no colour bar: each cell prints its count, and plotly.js would
            # otherwise set style attributes, which the Content-Security-Policy refuses.
            "xgap": 1, "ygap": 1, "showscale": False,
            "texttemplate": "%{z}", "hovertemplate": "agent %{y}<br>human %{x}<br>%{z} pairs<extra></extra>",
        }],
        "layout": _layout("Confusion matrix", xaxis={"title": {"text": "human"}, "type": "category"},
                          yaxis={"title": {"text": "agent"}, "type": "category", "autorange": "reversed", "automargin": True}),
    }


def segment_bars(segments: list[dict], *, bar: float | None, urls: list[str] | None = None) -> dict:
    """Agreement per segment with Wilson 95 % error bars; flagged segments in red and marked. With
    `urls` (one per segment), each bar carries its page last in customdata: a click opens it."""
    names = [(row["segment"] or "(none)") + (" ⚑" if row["flagged"] else "") for row in segments]
    rates = [row["rate"] for row in segments]
    return {
        "data": [{
            "type": "bar", "orientation": "h", "y": names, "x": rates,
            "marker": {"color": [_BAD if row["flagged"] else _OK for row in segments]},
            "error_x": {"type": "data", "symmetric": False,
                        "array": [(row["high"] - row["rate"]) if row["rate"] is not None else 0 for row in segments],
                        "arrayminus": [(row["rate"] - row["low"]) if row["rate"] is not None else 0 for row in segments]},
            "customdata": [[row["pairs"], "flagged: systematic discrepancy" if row["flagged"] else ""]
                           + ([urls[i]] if urls else []) for i, row in enumerate(segments)],
            "hovertemplate": "%{y}<br>agreement %{x:.1%}<br>%{customdata[0]} pairs<br>%{customdata[1]}"
                             + ("<br>click: its discrepant pairs" if urls else "") + "<extra></extra>",
        }],
        "layout": _layout("Agreement per segment", xaxis={"range": [0, 1.02], "tickformat": ".0%"},
                          yaxis={"type": "category", "autorange": "reversed", "automargin": True}, shapes=_bar_shape(bar, horizontal=False),
                          height=max(220, 60 + 28 * len(segments))),
    }
