"""PostgreSQL: the raw event table is partitioned by month; idempotency holds across partitions;
the retention drops an expired month whole with its idempotency keys, and the DEFAULT partition's
old rows one by one; the rollups stay. (SQLite keeps one table: test_retention.py.)"""
from datetime import datetime, timedelta, timezone
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from telemetry.fold import events_fold
from telemetry.models import DiscrepantPair, Event, PairHour, StageHour
from telemetry.partitions import month_partition, partition_create, partitioned, partitions
from telemetry.retention import retention_apply, retention_plan
from telemetry.selectors import rollout_discrepancy
from tests.telemetry.factories import rollout_with_history

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

URL = "/api/v1/events"
NOW = datetime.now(timezone.utc)
# Two whole months back and three: expired under a 30-day retention, accepted under 150 days.
OLD = (NOW - timedelta(days=75)).replace(day=10, hour=12, minute=0, second=0, microsecond=0)
OLDER = (NOW - timedelta(days=105)).replace(day=10, hour=12, minute=0, second=0, microsecond=0)


@pytest.fixture(autouse=True)
def _postgresql(db, settings):
    if connection.vendor != "postgresql":
        pytest.skip("partitioning is PostgreSQL's")
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "EVENT_RETENTION_DAYS": 150}  # the old months get in


@pytest.fixture
def rollout():
    return rollout_with_history(start=OLDER - timedelta(days=1))


def _pair(slug, key, at, agent_label="approve", human_label="deny"):
    return [{"agent": slug, "request_key": key, "kind": kind, "label": label, "occurred_at": at.isoformat()}
            for kind, label in (("agent", agent_label), ("human", human_label))]


def _where(key: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT tableoid::regclass::text FROM telemetry_event WHERE request_key = %s", [key])
        return {row[0] for row in cursor.fetchall()}


def test_events_land_in_their_month_and_stay_idempotent_across_months(events_client, rollout):
    assert partitioned()
    partition_create(OLD)
    slug = rollout.agent.slug
    first = events_client.post(URL, {"events": _pair(slug, "k", OLD) + _pair(slug, "recent", NOW)}).json()
    assert (first["accepted"], first["duplicates"]) == (4, 0)
    assert _where("k") == {month_partition(OLD).name} and _where("recent") == {month_partition(NOW).name}
    # The same decisions reported again with another time: duplicates, though another month's partition.
    again = events_client.post(URL, {"events": _pair(slug, "k", NOW) + _pair(slug, "k", NOW)}).json()
    assert (again["accepted"], again["duplicates"]) == (0, 4)
    assert Event.objects.filter(request_key="k").count() == 2


def test_retention_drops_an_expired_month_whole_and_keeps_the_figures(events_client, rollout, settings):
    partition_create(OLD)  # OLDER's month has no partition: its events go to the DEFAULT one
    slug = rollout.agent.slug
    events_client.post(URL, {"events": [*_pair(slug, "old", OLD), *_pair(slug, "older", OLDER),
                                        *_pair(slug, "recent", NOW - timedelta(hours=1))]})
    assert _where("older") == {"telemetry_event_default"}
    events_fold()
    figures = (sorted(StageHour.objects.values_list("hour", "arm", "decisions")),
               sorted(PairHour.objects.values_list("hour", "reference", "pairs")))
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "EVENT_RETENTION_DAYS": 30}

    plan = retention_plan(now=NOW)
    assert (plan.events, plan.waiting, plan.discrepant_pairs) == (4, 0, 2)
    out = StringIO()
    call_command("retention", "--apply", stdout=out)
    assert "removed 4 raw events and 2 discrepant pairs" in out.getvalue()
    assert month_partition(OLD).name not in {part.name for part in partitions()}
    assert set(Event.objects.values_list("request_key", flat=True)) == {"recent"}
    assert list(DiscrepantPair.objects.values_list("request_key", flat=True)) == ["recent"]
    assert (sorted(StageHour.objects.values_list("hour", "arm", "decisions")),
            sorted(PairHour.objects.values_list("hour", "reference", "pairs"))) == figures
    assert rollout_discrepancy(rollout_id=rollout.pk)["pairs"] == 3
    # The coming months have their partitions.
    assert {month_partition(NOW).name, month_partition(NOW + timedelta(days=31)).name} <= {p.name for p in partitions()}
    # Their keys went with them: the same decisions are new again (were the door to let them in).
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "EVENT_RETENTION_DAYS": 150}
    partition_create(OLD)
    assert events_client.post(URL, {"events": _pair(slug, "old", OLD)}).json()["accepted"] == 2


def test_an_expired_month_with_unfolded_events_waits_for_the_fold(events_client, rollout, settings):
    partition_create(OLD)
    events_client.post(URL, {"events": _pair(rollout.agent.slug, "old", OLD)})
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "EVENT_RETENTION_DAYS": 30}
    plan = retention_plan(now=NOW)
    assert (plan.events, plan.waiting) == (0, 2)
    assert retention_apply(now=NOW).events == 0
    assert Event.objects.count() == 2
    events_fold()
    assert retention_apply(now=NOW).events == 2
    assert rollout_discrepancy(rollout_id=rollout.pk)["pairs"] == 1


def test_autovacuum_clears_the_fold_queue_after_a_fixed_number_of_deleted_rows():
    # The pages count the queue, walking rows the fold deleted until vacuum clears them: the
    # threshold must not grow with the table (scale factor 0), or a busy queue is walked for minutes.
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'telemetry_unfoldedevent'")
        options = set(cursor.fetchone()[0] or [])
    assert {"autovacuum_vacuum_scale_factor=0", "autovacuum_vacuum_threshold=10000"} <= options
