"""The shadow panel and the pair page, with and without data, as a page and as an htmx partial."""
import json
from datetime import timedelta

import pytest
from django.urls import reverse

from telemetry.fold import events_fold
from tests.telemetry.factories import T0

pytestmark = pytest.mark.django_db


def _report_pairs(events_client, slug):
    events = []
    for i in range(40):
        at = (T0 + timedelta(hours=2 + i % 3)).isoformat()
        human = "approve" if i % 4 else "deny"
        events += [
            {"agent": slug, "request_key": f"claim/{i}", "kind": "agent", "label": "approve", "occurred_at": at,
             "segment": "eu" if i % 2 else "us", "latency_ms": 100 + i, "confidence": 0.9,
             "trace": {"steps": [{"tool": "lookup", "result": f"r{i}"}]}},
            {"agent": slug, "request_key": f"claim/{i}", "kind": "human", "label": human, "occurred_at": at},
        ]
    assert events_client.post("/api/v1/events", {"events": events}).json()["accepted"] == 80
    events_fold()


def test_panel_shows_an_empty_state_without_pairs(client, reviewer, shadow_rollout):
    client.force_login(reviewer)
    response = client.get(reverse("rollouts:shadow", args=[shadow_rollout.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "No pairs yet" in html
    assert "<html" in html and "vendor/plotly/plotly-partial.min.js" in html
    # A live region: polled, morphed in (docs/pages.md).
    assert 'data-live' in html and 'hx-trigger="every 10s"' in html and 'hx-swap="morph"' in html


def test_panel_with_pairs_embeds_three_figures_and_links_discrepancies(client, operator, events_client, shadow_rollout):
    _report_pairs(events_client, shadow_rollout.agent.slug)
    client.force_login(operator)
    response = client.get(reverse("rollouts:shadow", args=[shadow_rollout.pk]))
    html = response.content.decode()
    for figure in ("shadow-agreement", "shadow-confusion", "shadow-segments"):
        assert f'data-figure="{figure}"' in html
        assert f'<script id="{figure}" type="application/json">' in html
    agreement = json.loads(html.split('<script id="shadow-agreement" type="application/json">')[1].split("</script>")[0])
    assert agreement["layout"]["shapes"][0]["y0"] == 0.9  # the promotion bar
    assert reverse("rollouts:pair", args=[shadow_rollout.pk, "claim/36"]) in html
    assert 'data-stat="pairs">40<' in html
    assert "No pairs yet" not in html


def test_htmx_request_gets_the_panel_alone(client, manager, events_client, shadow_rollout, django_assert_max_num_queries):
    _report_pairs(events_client, shadow_rollout.agent.slug)
    client.force_login(manager)
    # Both references side by side: a few queries each, whatever the volume.
    with django_assert_max_num_queries(24):
        response = client.get(reverse("rollouts:shadow", args=[shadow_rollout.pk]), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith("<section") and "<html" not in html
    assert 'data-figure="shadow-segments"' in html


def test_pair_page_shows_both_sides_and_the_trace(client, reviewer, events_client, shadow_rollout):
    _report_pairs(events_client, shadow_rollout.agent.slug)
    client.force_login(reviewer)
    response = client.get(reverse("rollouts:pair", args=[shadow_rollout.pk, "claim/4"]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "disagree" in html and "deny" in html and "approve" in html
    assert "&quot;tool&quot;: &quot;lookup&quot;" in html  # pretty-printed trace, escaped
    assert f'href="/rollouts/{shadow_rollout.pk}/"' in html  # back to the rollout it belongs to
    assert client.get(reverse("rollouts:pair", args=[shadow_rollout.pk, "nope"])).status_code == 404


def test_pages_need_sign_in_and_a_role(client, shadow_rollout):
    url = reverse("rollouts:shadow", args=[shadow_rollout.pk])
    assert client.get(url).status_code == 302
    assert client.get(reverse("rollouts:shadow", args=[99999])).status_code == 302


def test_unknown_rollout_is_404(client, reviewer):
    client.force_login(reviewer)
    assert client.get(reverse("rollouts:shadow", args=[99999])).status_code == 404
