"""PostgreSQL: the fold's halves waiting for a partner (WaitingHalf). A pair that completes across
folds meets its waiting half and removes it; a database migrated with halves already folded gets
them seeded (telemetry migration 0015); the retention drops a waiting half with its event."""
import importlib
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection

from telemetry.fold import events_fold
from telemetry.models import Event, WaitingHalf
from telemetry.partitions import month_partition, partition_create, partitions
from telemetry.retention import retention_apply
from tests.telemetry.factories import rollout_with_history
from tests.telemetry.test_fold_batches import _event, _recount, _rollups

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

URL = "/api/v1/events"


@pytest.fixture(autouse=True)
def _postgresql(db):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's fold looks partners up; the table is PostgreSQL's")


def _waiting():
    return sorted(WaitingHalf.objects.values_list("request_key", "half"))


def test_a_half_waits_until_its_partner_is_folded_then_its_row_goes(events_client):
    slug = rollout_with_history().agent.slug
    events_client.post(URL, {"events": [_event(slug, "a"), _event(slug, "b", kind="human"),
                                        _event(slug, "both"), _event(slug, "both", kind="human")]})
    events_fold()
    # The pair folded together leaves nothing; each lonely half waits.
    assert _waiting() == [("a", "c"), ("b", "h")]
    events_client.post(URL, {"events": [_event(slug, "a", kind="human", label="deny", hours=9),
                                        _event(slug, "b", label="deny")]})
    events_fold()
    assert _waiting() == []
    assert _rollups() == _recount()
    assert sum(_recount()[1].values()) == 3


@pytest.mark.parametrize("batch_size", [1, 3, None])
def test_an_incumbent_half_after_its_candidate_pairs_once_and_waits_for_nothing(events_client, batch_size):
    from agents.models import Agent
    from tests.factories import AgentVersionFactory

    v1 = AgentVersionFactory(version="1.0.0")
    Agent.objects.filter(pk=v1.agent_id).update(production_version=v1)
    v2 = AgentVersionFactory(agent=Agent.objects.get(pk=v1.agent_id), version="2.0.0")
    rollout_with_history(version=v2)
    slug = v1.agent.slug
    fold = {"batch_size": batch_size} if batch_size else {}
    events_client.post(URL, {"events": [_event(slug, f"k{i}", version="2.0.0", label="deny" if i else "approve")
                                        for i in range(4)]})
    events_fold(**fold)
    # Candidates wait for humans only: an incumbent half folded later looks its candidate up.
    assert _waiting() == [(f"k{i}", "c") for i in range(4)]
    events_client.post(URL, {"events": [_event(slug, f"k{i}", label="approve", hours=3) for i in range(4)]
                                       + [_event(slug, "k0", kind="human", hours=5)]})
    events_fold(**fold)
    assert _waiting() == [(f"k{i}", "c") for i in range(1, 4)]
    expected = _recount()
    assert _rollups() == expected
    assert sum(n for key, n in expected[1].items() if key[3] == "incumbent") == 4


def test_halves_folded_before_the_table_existed_are_seeded_and_pair_once(events_client):
    slug = rollout_with_history().agent.slug
    events_client.post(URL, {"events": [
        _event(slug, "c-first"), _event(slug, "h-first", kind="human", label="deny"),
        _event(slug, "paired"), _event(slug, "paired", kind="human"),
        _event(slug, "queued")]})
    events_fold()
    events_client.post(URL, {"events": [_event(slug, "queued", kind="human", label="deny", hours=4)]})
    # The database as migration 0015 finds it: halves folded, no table of waiting halves (one
    # event of "queued" still queued, its partner folded).
    WaitingHalf.objects.all().delete()
    migration = importlib.import_module("telemetry.migrations.0015_waiting_halves")
    with connection.schema_editor() as editor:
        migration.seed(None, editor)
    assert _waiting() == [("c-first", "c"), ("h-first", "h"), ("queued", "c")]
    events_client.post(URL, {"events": [_event(slug, "c-first", kind="human", hours=6),
                                        _event(slug, "h-first", label="approve")]})
    events_fold()
    assert _waiting() == []
    expected = _recount()
    assert _rollups() == expected
    assert sum(expected[1].values()) == 4


def test_the_retention_drops_a_waiting_half_with_its_month(events_client, settings):
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "EVENT_RETENTION_DAYS": 150}
    now = datetime.now(timezone.utc)
    old = (now - timedelta(days=75)).replace(day=10, hour=12, minute=0, second=0, microsecond=0)
    slug = rollout_with_history(start=old - timedelta(days=1)).agent.slug
    partition_create(old)
    events_client.post(URL, {"events": [
        {"agent": slug, "request_key": "old", "kind": "agent", "label": "approve", "occurred_at": old.isoformat()},
        {"agent": slug, "request_key": "new", "kind": "human", "label": "deny",
         "occurred_at": (now - timedelta(hours=1)).isoformat()}]})
    events_fold()
    assert _waiting() == [("new", "h"), ("old", "c")]
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "EVENT_RETENTION_DAYS": 30}
    assert retention_apply(now=now).events == 1
    assert month_partition(old).name not in {part.name for part in partitions()}
    assert list(Event.objects.values_list("request_key", flat=True)) == ["new"]
    assert _waiting() == [("new", "h")]
