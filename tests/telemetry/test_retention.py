"""Retention of raw events: older than EVENT_RETENTION_DAYS they go, with the discrepant pairs
listed from them; the rollups and every figure read from them stay; unfolded events wait.
Row by row where the table is one (SQLite); on PostgreSQL, whose table is partitioned by month,
see test_partitions.py."""
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from telemetry.fold import events_fold
from telemetry.models import DiscrepantPair, Event, LatencyHour, PairHour, StageHour, UnfoldedEvent
from telemetry.partitions import partitioned
from telemetry.retention import retention_apply, retention_plan
from telemetry.selectors import rollout_discrepancy
from tests.telemetry.factories import T0

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _row_by_row(db):
    if partitioned():
        pytest.skip("the event table is partitioned here: a month goes whole (test_partitions.py)")

URL = "/api/v1/events"


def _pair(slug, key, hours, agent_label="approve", human_label="deny"):
    at = (T0 + timedelta(hours=hours)).isoformat()
    return [{"agent": slug, "request_key": key, "kind": "agent", "label": agent_label, "occurred_at": at,
             "latency_ms": 120.0},
            {"agent": slug, "request_key": key, "kind": "human", "label": human_label, "occurred_at": at}]


def _rollups():
    return (sorted(StageHour.objects.values_list("rollout_id", "stage", "hour", "arm", "decisions", "errors")),
            sorted(PairHour.objects.values_list("rollout_id", "stage", "hour", "reference", "agent_label",
                                                "reference_label", "pairs")),
            sorted(LatencyHour.objects.values_list("rollout_id", "stage", "hour", "arm", "bucket", "count")))


def _seed(events_client, slug):
    """Two discrepant pairs two hours after T0, one agreeing and one discrepant pair four hours after, folded."""
    events_client.post(URL, {"events": [*_pair(slug, "old-1", 2), *_pair(slug, "old-2", 2.5),
                                        *_pair(slug, "new-1", 4, human_label="approve"), *_pair(slug, "new-2", 4.5)]})
    assert events_fold() == 8


def test_old_raw_events_and_discrepant_pairs_go_and_the_figures_stay(events_client, shadow_rollout):
    _seed(events_client, shadow_rollout.agent.slug)
    before, report = _rollups(), rollout_discrepancy(rollout_id=shadow_rollout.pk)
    now = T0 + timedelta(days=30, hours=3)  # the cutoff falls between the old and the new pairs

    plan = retention_plan(now=now)
    assert (plan.cutoff, plan.events, plan.waiting, plan.discrepant_pairs) == (T0 + timedelta(hours=3), 4, 0, 2)
    assert Event.objects.count() == 8  # showing the plan removes nothing

    done = retention_apply(now=now, batch=3)  # several transactions
    assert (done.events, done.discrepant_pairs) == (4, 2)
    assert sorted(Event.objects.values_list("request_key", flat=True).distinct()) == ["new-1", "new-2"]
    assert list(DiscrepantPair.objects.values_list("request_key", flat=True)) == ["new-2"]
    assert _rollups() == before
    after = rollout_discrepancy(rollout_id=shadow_rollout.pk)
    assert (after["pairs"], after["agreements"]) == (report["pairs"], report["agreements"]) == (4, 1)
    assert retention_apply(now=now).events == 0  # nothing left to do


def test_an_unfolded_old_event_waits_for_the_fold(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    events_client.post(URL, {"events": _pair(slug, "old-1", 2)})
    now = T0 + timedelta(days=30, hours=3)
    plan = retention_plan(now=now)
    assert (plan.events, plan.waiting) == (0, 2)
    assert retention_apply(now=now).events == 0
    assert UnfoldedEvent.objects.count() == 2 and Event.objects.count() == 2
    events_fold()
    assert retention_apply(now=now).events == 2
    assert rollout_discrepancy(rollout_id=shadow_rollout.pk)["pairs"] == 1  # counted before it went


def test_the_command_shows_by_default_and_removes_with_apply(events_client, shadow_rollout, settings):
    _seed(events_client, shadow_rollout.agent.slug)
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "EVENT_RETENTION_DAYS": 5}  # T0 was a week ago
    out = StringIO()
    call_command("retention", stdout=out)
    text = out.getvalue()
    assert "raw events to remove: 8" in text and "discrepant pairs to remove: 3" in text and "dry run" in text
    assert Event.objects.count() == 8 and DiscrepantPair.objects.count() == 3
    out = StringIO()
    call_command("retention", "--apply", stdout=out)
    assert "removed 8 raw events and 3 discrepant pairs" in out.getvalue()
    assert Event.objects.count() == 0 and DiscrepantPair.objects.count() == 0
    assert StageHour.objects.exists() and PairHour.objects.exists()


def test_the_daily_task_applies_the_retention(events_client, shadow_rollout, settings):
    from telemetry.tasks import apply_retention

    _seed(events_client, shadow_rollout.agent.slug)
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "EVENT_RETENTION_DAYS": 5}  # T0 was a week ago
    assert apply_retention() == {"events": 8, "discrepant_pairs": 3}
    assert Event.objects.count() == 0 and StageHour.objects.exists()
    assert "apply-retention" in settings.CELERY_BEAT_SCHEDULE
