"""The rollout page between folds (bench/rollout_page.py, steady state): the shadow panel's charts
are kept under the fold watermark, and the page reads the fold state, the promotion requests and the
transitions once. What the page shows is what it shows with every cache cold, and moves at once on a
fold, a promotion request and a decision."""
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from rollouts.models import PromotionRequest, PromotionStatus
from telemetry.fold import events_fold
from telemetry.selectors import rollups_cache_clear
from tests.telemetry.factories import T0
from tests.telemetry.test_pages import _report_pairs

pytestmark = pytest.mark.django_db


def _script(html: str, figure: str) -> str:
    return html.split(f'<script id="{figure}" type="application/json">')[1].split("</script>")[0]


def _page(client, rollout) -> str:
    response = client.get(f"/rollouts/{rollout.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def _cold_page(client, rollout) -> str:
    cache.clear()
    rollups_cache_clear()
    return _page(client, rollout)


def _more_pairs(events_client, slug):
    """Ten more pairs, all discrepant, in a new segment: every chart of the panel changes."""
    events = []
    for i in range(10):
        at = (T0 + timedelta(hours=6)).isoformat()
        events += [{"agent": slug, "request_key": f"late/{i}", "kind": "agent", "label": "approve", "occurred_at": at,
                    "segment": "apac"},
                   {"agent": slug, "request_key": f"late/{i}", "kind": "human", "label": "deny", "occurred_at": at}]
    assert events_client.post("/api/v1/events", {"events": events}).json()["accepted"] == 20
    events_fold()


FIGURES = ("shadow-agreement", "shadow-confusion", "shadow-segments")


def test_the_panels_charts_are_the_uncached_ones_and_move_with_a_fold(client, operator, events_client, shadow_rollout):
    _report_pairs(events_client, shadow_rollout.agent.slug)
    client.force_login(operator)
    first = _page(client, shadow_rollout)
    again = _page(client, shadow_rollout)  # from the caches
    cold = _cold_page(client, shadow_rollout)
    for figure in FIGURES:
        assert _script(first, figure) == _script(again, figure) == _script(cold, figure)
    assert "apac" not in _script(first, "shadow-segments")
    late = reverse("rollouts:pair", args=[shadow_rollout.pk, "late/9"])
    assert reverse("rollouts:pair", args=[shadow_rollout.pk, "claim/36"]) in first and late not in first

    _more_pairs(events_client, shadow_rollout.agent.slug)
    after = _page(client, shadow_rollout)  # the fold moved the watermark: nothing cached before is read
    assert "apac" in _script(after, "shadow-segments")
    assert _script(after, "shadow-confusion") != _script(first, "shadow-confusion")
    assert 'data-stat="pairs">50<' in after
    assert late in after  # the recent discrepant pairs, with their pages
    cold = _cold_page(client, shadow_rollout)
    for figure in FIGURES:
        assert _script(after, figure) == _script(cold, figure)


def test_the_page_reads_the_fold_state_and_the_requests_once(client, operator, events_client, shadow_rollout):
    _report_pairs(events_client, shadow_rollout.agent.slug)
    client.force_login(operator)
    _page(client, shadow_rollout)
    with CaptureQueriesContext(connection) as queries:
        html = _page(client, shadow_rollout)
    sql = [q["sql"] for q in queries.captured_queries]
    assert sum('FROM "telemetry_rolloutfold"' in q for q in sql) == 1  # the gates' and the panel's figures
    assert sum('FROM "rollouts_promotionrequest"' in q for q in sql) == 1  # the list answers "one pending?"
    # No live stage, no guardrail chart: its transition markers are not read; the history is.
    assert sum('FROM "rollouts_stagetransition"' in q for q in sql) == 1
    assert "Live guardrails over time" not in html and 'id="rollout-history"' in html
    # The version's agent is the rollout's, read with it: "agent@version" costs no query of its own.
    assert not any(q.startswith('SELECT "agents_agent"') for q in sql)
    assert f"{shadow_rollout.agent.slug}@{shadow_rollout.version.version}" in html


def test_request_promotion_follows_a_pending_request_older_than_the_list(client, operator, shadow_rollout):
    client.force_login(operator)
    assert 'id="action-promote"' in _page(client, shadow_rollout)
    pending = PromotionRequest.objects.create(rollout=shadow_rollout, from_stage="shadow", to_stage="canary",
                                              requested_by=operator, requested_at=T0)
    assert 'id="action-promote"' not in _page(client, shadow_rollout)
    # Twenty decided requests newer than the pending one: the page lists those, and still knows.
    for i in range(20):
        PromotionRequest.objects.create(rollout=shadow_rollout, from_stage="shadow", to_stage="canary",
                                        status=PromotionStatus.REJECTED, requested_by=operator,
                                        requested_at=T0 + timedelta(minutes=i + 1))
    html = _page(client, shadow_rollout)
    assert f'id="promotion-request-{pending.pk}"' not in html
    assert 'id="action-promote"' not in html
    pending.status = PromotionStatus.REJECTED
    pending.save()
    assert 'id="action-promote"' in _page(client, shadow_rollout)
