"""The discrepancy report end to end: ingest through the API, fold, read the figures (docs/architecture.md, "Where each rule lives")."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from telemetry.fold import events_fold
from telemetry.selectors import rollout_discrepancy, shadow_panel_context, stage_metrics
from tests.telemetry.factories import T0

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"


def _pairs(slug, prefix, agent_labels, human_labels, segment="", hours=2.0):
    events = []
    for i, (a, h) in enumerate(zip(agent_labels, human_labels)):
        at = (T0 + timedelta(hours=hours, seconds=i)).isoformat()
        events.append({"agent": slug, "request_key": f"{prefix}{i}", "kind": "agent", "label": a, "segment": segment,
                       "occurred_at": at})
        events.append({"agent": slug, "request_key": f"{prefix}{i}", "kind": "human", "label": h, "occurred_at": at})
    return events


def _agreeing(n_agree, n_total):
    return ["yes"] * n_total, ["yes"] * n_agree + ["no"] * (n_total - n_agree)


def test_kappa_and_wilson_match_reference_values(events_client, shadow_rollout):
    # Wikipedia's Cohen's kappa example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> kappa 0.4.
    agent = ["yes"] * 25 + ["no"] * 25
    human = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    events_client.post(URL, {"events": _pairs(shadow_rollout.agent.slug, "r", agent, human)})
    events_fold()
    report = rollout_discrepancy(rollout_id=shadow_rollout.pk)
    assert (report["pairs"], report["agreements"]) == (50, 35)
    assert report["kappa"] == pytest.approx(0.4)
    # Wilson bounds are the roots of (0.7 - p)^2 = z^2 p (1 - p) / 50, solved as a quadratic:
    # (0.5624965, 0.8089645), as statsmodels proportion_confint(35, 50, method="wilson").
    assert report["interval"] == pytest.approx([0.5624965, 0.8089645], abs=1e-7)
    assert report["confusion"] == {"labels": ["no", "yes"], "matrix": [[15, 10], [5, 20]]}
    # 10 agent-no/human-yes vs 5 agent-yes/human-no: exact McNemar p = 2 P(X <= 5 | 15, 1/2) = 0.301758
    [direction] = report["directions"]
    assert (direction["agent_label"], direction["human_label"], direction["a_to_b"], direction["b_to_a"]) == ("no", "yes", 10, 5)
    assert direction["p_value"] == pytest.approx(0.301758, abs=1e-6)
    assert direction["dominant"] == "a_to_b" and not direction["significant"]


def test_segment_with_lower_agreement_is_flagged_and_a_small_one_is_not(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    events = (
        _pairs(slug, "a", *_agreeing(190, 200), segment="retail")
        + _pairs(slug, "b", *_agreeing(70, 100), segment="commercial")
        + _pairs(slug, "c", *_agreeing(3, 10), segment="tiny")
    )
    for start in range(0, len(events), 5000):
        assert events_client.post(URL, {"events": events[start:start + 5000]}).json()["errors"] == []
    events_fold()
    report = rollout_discrepancy(rollout_id=shadow_rollout.pk)
    assert report["flagged_segments"] == ["commercial"]
    segments = {row["segment"]: row for row in report["segments"]}
    assert segments["commercial"]["flagged"] and segments["commercial"]["p_value"] < 0.001
    assert not segments["tiny"]["flagged"] and segments["tiny"]["p_value"] is None  # under 30 pairs: not tested
    assert not segments["retail"]["flagged"]
    assert segments["tiny"]["rate"] == pytest.approx(0.3)


def test_hourly_series_and_stage_filter(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    events = _pairs(slug, "h1", *_agreeing(9, 10), hours=2) + _pairs(slug, "h2", *_agreeing(5, 10), hours=3.5) \
        + _pairs(slug, "st", *_agreeing(4, 4), hours=0.5)
    events_client.post(URL, {"events": events})
    events_fold()
    report = rollout_discrepancy(rollout_id=shadow_rollout.pk, stage="shadow")
    assert [(row["pairs"], row["agreements"]) for row in report["hourly"]] == [(10, 9), (10, 5)]
    assert report["pairs"] == 20
    assert rollout_discrepancy(rollout_id=shadow_rollout.pk)["pairs"] == 24
    assert rollout_discrepancy(rollout_id=shadow_rollout.pk, stage="staging")["pairs"] == 4


def test_recent_discrepant_pairs_are_the_20_latest(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    events_client.post(URL, {"events": _pairs(slug, "d", ["yes"] * 30, ["no"] * 30)})
    events_fold()
    recent = rollout_discrepancy(rollout_id=shadow_rollout.pk)["recent_discrepant"]
    assert len(recent) == 20
    assert recent[0]["request_key"] == "d29" and recent[-1]["request_key"] == "d10"


def test_discrepancy_api_for_any_role_and_404(api_client_for, reviewer, manager, events_client, shadow_rollout):
    events_client.post(URL, {"events": _pairs(shadow_rollout.agent.slug, "x", *_agreeing(3, 4))})
    events_fold()
    for user in (reviewer, manager):
        response = api_client_for(user).get(f"/api/v1/rollouts/{shadow_rollout.pk}/discrepancy")
        assert response.status_code == 200
        data = response.json()
        assert (data["pairs"], data["agreements"], data["pending_events"]) == (4, 3, 0)
        assert set(data) >= {"interval", "kappa", "confusion", "segments", "flagged_segments", "directions",
                             "hourly", "recent_discrepant", "computed_at"}
    assert api_client_for(reviewer).get(f"/api/v1/rollouts/{shadow_rollout.pk}/discrepancy?stage=canary").json()["pairs"] == 0
    missing = api_client_for(reviewer).get("/api/v1/rollouts/99999/discrepancy")
    assert missing.status_code == 404 and missing.json()["detail"]


def test_discrepancy_reports_pending_events_before_the_fold(events_client, shadow_rollout):
    events_client.post(URL, {"events": _pairs(shadow_rollout.agent.slug, "p", *_agreeing(1, 2))})
    report = rollout_discrepancy(rollout_id=shadow_rollout.pk)
    assert (report["pairs"], report["pending_events"], report["computed_at"]) == (0, 4, None)


def test_the_cached_agreement_chart_shows_each_viewer_their_own_zone_and_bar(events_client, shadow_rollout):
    events_client.post(URL, {"events": _pairs(shadow_rollout.agent.slug, "z", *_agreeing(9, 10), hours=2)})
    events_fold()

    def chart(zone, bar):
        with timezone.override(zone):
            figure = shadow_panel_context(rollout=shadow_rollout, bar=bar)["shadow"]["agreement_figure"]
        bars = [trace for trace in figure["data"] if trace.get("name") == "agreement"]
        return bars[0]["x"], figure

    utc_hours, _ = chart("UTC", 0.8)
    tokyo_hours, _ = chart("Asia/Tokyo", 0.8)  # the same watermark: served from the cache, in its own zone
    assert [h[11:] for h in utc_hours] != [h[11:] for h in tokyo_hours]
    assert utc_hours == [(T0 + timedelta(hours=2)).strftime("%Y-%m-%d %H:00")]
    assert chart("UTC", 0.8)[0] == utc_hours
    assert chart("UTC", 0.9)[1] != chart("UTC", 0.8)[1]  # the bar drawn is the one asked for


def test_one_pass_over_the_pair_rollup_serves_every_stage_and_reference_of_a_view(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    events_client.post(URL, {"events": _pairs(slug, "a", *_agreeing(9, 10), hours=2)
                             + _pairs(slug, "b", *_agreeing(3, 4), hours=0.5)})
    events_fold()
    everything = rollout_discrepancy(rollout_id=shadow_rollout.pk)
    with CaptureQueriesContext(connection) as queries:
        shadow = rollout_discrepancy(rollout_id=shadow_rollout.pk, stage="shadow")
        staging = rollout_discrepancy(rollout_id=shadow_rollout.pk, stage="staging")
        incumbent = rollout_discrepancy(rollout_id=shadow_rollout.pk, against="incumbent")
        metrics = stage_metrics(rollout_id=shadow_rollout.pk, stage="shadow")
    assert not [q for q in queries.captured_queries if "telemetry_pairhour" in q["sql"]]
    assert (everything["pairs"], everything["agreements"]) == (14, 12)
    assert (shadow["pairs"], shadow["agreements"]) == (10, 9)
    assert (staging["pairs"], staging["agreements"]) == (4, 3)
    assert (metrics.pairs, metrics.agreements) == (10, 9)
    assert incumbent["pairs"] == 0 and everything["references"] == {"human": 14, "incumbent": 0}
    assert [row["pairs"] for row in everything["hourly"]] == [4, 10]
