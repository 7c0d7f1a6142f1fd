"""charts.py builds valid Plotly figures (checked by plotly's own validators)."""
import plotly.graph_objects as go

from telemetry import charts

HOURLY = [{"hour": "2026-03-02T10:00:00+00:00", "pairs": 10, "agreements": 9, "rate": 0.9, "low": 0.6, "high": 0.98},
          {"hour": "2026-03-02T11:00:00+00:00", "pairs": 4, "agreements": 2, "rate": 0.5, "low": 0.15, "high": 0.85}]
SEGMENTS = [{"segment": "eu", "pairs": 100, "agreements": 70, "rate": 0.7, "low": 0.6, "high": 0.78, "p_value": 1e-5, "flagged": True},
            {"segment": "", "pairs": 3, "agreements": 3, "rate": 1.0, "low": 0.44, "high": 1.0, "p_value": None, "flagged": False}]


def test_agreement_figure_has_band_line_and_bar():
    fig = charts.agreement_over_time(HOURLY, bar=0.9)
    go.Figure(fig)  # raises on an invalid property
    assert fig["data"][1]["fill"] == "tonexty" and fig["data"][2]["y"] == [0.9, 0.5]
    assert fig["layout"]["shapes"][0]["y0"] == 0.9
    assert charts.agreement_over_time(HOURLY, bar=None)["layout"]["shapes"] == []


def test_confusion_heatmap_is_valid():
    fig = charts.confusion_heatmap({"labels": ["a", "b"], "matrix": [[3, 1], [0, 5]]})
    go.Figure(fig)
    assert fig["data"][0]["z"] == [[3, 1], [0, 5]]


def test_segment_bars_mark_flagged_segments():
    fig = charts.segment_bars(SEGMENTS, bar=0.9)
    go.Figure(fig)
    assert fig["data"][0]["y"] == ["eu ⚑", "(none)"]
    colors = fig["data"][0]["marker"]["color"]
    assert colors[0] != colors[1]
    assert fig["data"][0]["error_x"]["arrayminus"][0] == 0.7 - 0.6
