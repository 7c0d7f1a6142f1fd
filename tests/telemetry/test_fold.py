"""The fold: pairs complete in either order and any time later, each event and pair counted exactly once."""
from datetime import timedelta

import pytest
from django.db import DatabaseError

from telemetry.fold import events_fold
from telemetry.models import Event, LatencyHour, PairHour, StageHour, TrafficPeriod, UnfoldedEvent
from telemetry.selectors import rollout_discrepancy, stage_metrics
from tests.telemetry.factories import T0

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"


def _event(slug, key, kind="agent", label="approve", hours=2.0, **extra):
    return {"agent": slug, "request_key": key, "kind": kind, "label": label,
            "occurred_at": (T0 + timedelta(hours=hours)).isoformat(), **extra}


def _snapshot():
    return (
        sorted(StageHour.objects.values_list("rollout_id", "stage", "hour", "arm", "decisions", "errors", "slow")),
        sorted(PairHour.objects.values_list("rollout_id", "stage", "hour", "reference", "segment", "agent_label",
                                            "reference_label", "pairs")),
        sorted(LatencyHour.objects.values_list("rollout_id", "stage", "hour", "arm", "bucket", "count")),
    )


def test_human_before_agent_and_duplicates_count_each_pair_once(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    events_client.post(URL, {"events": [_event(slug, "k1", kind="human", label="deny", hours=3)]})
    events_fold()
    assert rollout_discrepancy(rollout_id=shadow_rollout.pk)["pairs"] == 0
    # The agent half arrives later, twice, along with a replay of the human half.
    batch = {"events": [_event(slug, "k1", label="approve"), _event(slug, "k1", kind="human", label="deny", hours=3)]}
    events_client.post(URL, batch)
    events_client.post(URL, batch)
    events_fold()
    report = rollout_discrepancy(rollout_id=shadow_rollout.pk)
    assert (report["pairs"], report["agreements"]) == (1, 0)
    assert report["confusion"] == {"labels": ["approve", "deny"], "matrix": [[0, 1], [0, 0]]}
    assert report["recent_discrepant"][0]["request_key"] == "k1"
    # The pair lands in the agent event's hour.
    assert report["hourly"][0]["hour"] == (T0 + timedelta(hours=2)).isoformat()


def test_both_halves_in_one_fold_count_once(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    events_client.post(URL, {"events": [_event(slug, "k1", kind="human"), _event(slug, "k1")]})
    events_fold()
    assert rollout_discrepancy(rollout_id=shadow_rollout.pk)["pairs"] == 1


def test_halves_folded_in_separate_small_batches_count_once(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    events = []
    for i in range(20):
        events += [_event(slug, f"k{i}", kind="human"), _event(slug, f"k{i}")] if i % 2 else \
                  [_event(slug, f"k{i}"), _event(slug, f"k{i}", kind="human")]
    events_client.post(URL, {"events": events})
    assert events_fold(batch_size=3) == 40
    assert rollout_discrepancy(rollout_id=shadow_rollout.pk)["pairs"] == 20


def test_pair_completed_a_day_later_after_the_rollout_ended(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    events_client.post(URL, {"events": [_event(slug, "k1", label="approve", hours=2)]})
    events_fold()
    assert rollout_discrepancy(rollout_id=shadow_rollout.pk)["pairs"] == 0  # cached under the watermark
    shadow_rollout.state, shadow_rollout.ended_at = "rolled_back", T0 + timedelta(hours=10)
    shadow_rollout.save()
    # As rollouts.services records a rollback: from then on the incumbent (people) handle everything.
    TrafficPeriod.objects.create(agent=shadow_rollout.agent, starts_at=shadow_rollout.ended_at, rollout=None)
    events_client.post(URL, {"events": [_event(slug, "k1", kind="human", label="approve", hours=26)]})
    human = Event.objects.get(kind="human")
    assert human.rollout_id is None  # no rollout held a day later …
    events_fold()
    # … but the pair belongs to the agent's stage, whose watermark the fold moved: shown at once.
    report = rollout_discrepancy(rollout_id=shadow_rollout.pk)
    assert (report["pairs"], report["agreements"]) == (1, 1)
    assert stage_metrics(rollout_id=shadow_rollout.pk, stage="shadow").pairs == 1


def test_fold_twice_changes_nothing(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    events_client.post(URL, {"events": [_event(slug, f"k{i}", latency_ms=i * 10, segment="eu") for i in range(30)]
                                      + [_event(slug, f"k{i}", kind="human", label="deny" if i % 3 else "approve")
                                         for i in range(30)]})
    assert events_fold() == 60
    first = _snapshot()
    assert events_fold() == 0
    assert _snapshot() == first
    assert UnfoldedEvent.objects.count() == 0


def test_a_rolled_back_fold_leaves_events_unfolded(events_client, shadow_rollout, monkeypatch):
    """A worker killed mid-batch: the mark and the counts are one transaction, so nothing is half-counted."""
    from telemetry import fold

    slug = shadow_rollout.agent.slug
    events_client.post(URL, {"events": [_event(slug, "k1"), _event(slug, "k1", kind="human")]})
    real = fold._fold_statements

    def crash_after_counts(*args, **kwargs):
        # Whatever the fold passes, it gets every real statement (the queue taken, the rollups
        # counted) and then one that fails inside the same transaction.
        return real(*args, **kwargs) + [("SELECT no_such_column FROM telemetry_event", [])]

    monkeypatch.setattr(fold, "_fold_statements", crash_after_counts)
    with pytest.raises(DatabaseError, match="no_such_column"):
        events_fold()
    monkeypatch.setattr(fold, "_fold_statements", real)
    assert UnfoldedEvent.objects.count() == 2
    assert StageHour.objects.count() == 0
    assert events_fold() == 2
    assert stage_metrics(rollout_id=shadow_rollout.pk, stage="shadow").pairs == 1


def test_latency_buckets_match_the_statistics_module(events_client, shadow_rollout):
    from telemetry.statistics import latency_bucket

    slug = shadow_rollout.agent.slug
    latencies = [0, 1, 1.5, 2, 999.9, 1000, 1000.1, 59999, 60000, 60001, 10 ** 7]
    events_client.post(URL, {"events": [_event(slug, f"k{i}", latency_ms=ms) for i, ms in enumerate(latencies)]})
    events_fold()
    expected = {}
    for ms in latencies:
        expected[latency_bucket(ms)] = expected.get(latency_bucket(ms), 0) + 1
    assert stage_metrics(rollout_id=shadow_rollout.pk, stage="shadow").latency_counts == expected
