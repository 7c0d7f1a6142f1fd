"""Every aggregate opens its rows: a segment or a label pair of the shadow comparison opens its
discrepant pairs (filtered, newest first, paginated), and the pair page steps through them."""
from datetime import timedelta

import pytest
from django.urls import reverse

from telemetry.models import DiscrepantPair
from telemetry.selectors import discrepant_pair_neighbours, discrepant_pairs
from tests.telemetry.factories import T0
from tests.telemetry.test_pages import _report_pairs

pytestmark = pytest.mark.django_db


def pairs(rollout, rows):
    """rows: (request_key, segment, agent_label, reference_label, minutes after T0)."""
    DiscrepantPair.objects.bulk_create([
        DiscrepantPair(rollout=rollout, stage="shadow", agent=rollout.agent, request_key=key, reference="human",
                       segment=segment, agent_label=a, reference_label=r, occurred_at=T0 + timedelta(minutes=m))
        for key, segment, a, r, m in rows
    ])


ROWS = [("k1", "eu", "approve", "deny", 1), ("k2", "us", "approve", "deny", 2), ("k3", "eu", "deny", "approve", 3),
        ("k4", "", "approve", "deny", 4), ("k5", "eu", "approve", "deny", 5), ("k6", "eu", "approve", "deny", 5)]


def test_discrepant_pairs_filter_by_segment_and_label_pair_newest_first(shadow_rollout):
    pairs(shadow_rollout, ROWS)

    def keys(**filters):
        return list(discrepant_pairs(rollout_id=shadow_rollout.pk, reference="human", **filters)
                    .values_list("request_key", flat=True))

    assert keys() == ["k6", "k5", "k4", "k3", "k2", "k1"]  # same minute: the later row first
    assert keys(segment="eu") == ["k6", "k5", "k3", "k1"]
    assert keys(segment="") == ["k4"]  # requests that named no segment
    assert keys(agent_label="approve", reference_label="deny") == ["k6", "k5", "k4", "k2", "k1"]
    assert keys(segment="eu", agent_label="deny") == ["k3"]
    assert keys(segment="asia") == []


def test_neighbours_step_through_the_same_filter(shadow_rollout):
    pairs(shadow_rollout, ROWS)
    where = {"rollout_id": shadow_rollout.pk, "reference": "human", "segment": "eu"}
    assert discrepant_pair_neighbours(request_key="k6", **where) == {"position": 1, "total": 4, "newer": None, "older": "k5"}
    assert discrepant_pair_neighbours(request_key="k5", **where) == {"position": 2, "total": 4, "newer": "k6", "older": "k3"}
    assert discrepant_pair_neighbours(request_key="k1", **where) == {"position": 4, "total": 4, "newer": "k3", "older": None}
    assert discrepant_pair_neighbours(request_key="k2", **where) is None  # not in segment eu


def test_the_list_page_is_filtered_and_paginated(client, reviewer, shadow_rollout):
    pairs(shadow_rollout, [(f"p{i}", "eu", "approve", "deny", i) for i in range(60)] + [("x", "us", "a", "b", 1)])
    client.force_login(reviewer)
    url = reverse("rollouts:discrepancies", args=[shadow_rollout.pk])
    html = client.get(url, {"against": "human", "segment": "eu"}).content.decode()
    assert "in segment <strong>eu</strong>" in html and "<strong>60</strong>, newest first" in html
    assert html.count('<tr>\n      <td><a href="/rollouts/') == 50 and "Page 1 of 2" in html
    assert f'href="/rollouts/{shadow_rollout.pk}/pairs/p59/?against=human&amp;segment=eu"' in html
    assert ">x<" not in html
    second = client.get(url, {"against": "human", "segment": "eu", "page": 2}).content.decode()
    assert second.count('<tr>\n      <td><a href="/rollouts/') == 10
    assert client.get(url, {"against": "nobody"}).status_code == 404


def test_the_pair_page_steps_to_its_neighbours_within_the_filter(client, reviewer, events_client, shadow_rollout):
    _report_pairs(events_client, shadow_rollout.agent.slug)  # every fourth: the human said deny
    client.force_login(reviewer)
    listed = list(discrepant_pairs(rollout_id=shadow_rollout.pk, reference="human", segment="us")
                  .values_list("request_key", flat=True))
    assert len(listed) >= 3
    html = client.get(reverse("rollouts:pair", args=[shadow_rollout.pk, listed[1]]),
                      {"against": "human", "segment": "us"}).content.decode()
    assert f"Discrepant pair <strong>2</strong> of {len(listed)} in segment <strong>us</strong>" in html
    assert f'href="/rollouts/{shadow_rollout.pk}/pairs/{listed[0]}/?against=human&amp;segment=us" rel="prev"' in html
    assert f'href="/rollouts/{shadow_rollout.pk}/pairs/{listed[2]}/?against=human&amp;segment=us" rel="next"' in html
    # Opened from nowhere in particular: it steps through every discrepant pair of the rollout.
    assert "Discrepant pair <strong>" in client.get(reverse("rollouts:pair", args=[shadow_rollout.pk, listed[1]])).content.decode()


def test_the_panel_links_segments_label_pairs_and_bars_to_their_pairs(client, reviewer, events_client, shadow_rollout):
    _report_pairs(events_client, shadow_rollout.agent.slug)
    client.force_login(reviewer)
    html = client.get(reverse("rollouts:shadow", args=[shadow_rollout.pk])).content.decode()
    drill = reverse("rollouts:discrepancies", args=[shadow_rollout.pk])
    assert f'href="{drill}?against=human&amp;segment=eu"' in html  # the segments table
    assert f'href="{drill}?against=human&amp;agent_label=approve&amp;reference_label=deny"' in html  # a label pair
    assert f'"{drill}?against=human\\u0026segment=us"' in html  # a bar of the segment chart, on click
    assert 'data-figure="shadow-segments" data-drill' in html
