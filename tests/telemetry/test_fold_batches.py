"""The fold against a recount from the stored events: any batch size, any arrival order, late commits, racing folds."""
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection

from telemetry.fold import events_fold
from telemetry.models import DiscrepantPair, Event, PairHour, StageHour, UnfoldedEvent
from telemetry.services import events_ingest
from tests.telemetry.factories import T0, rollout_with_history

URL = "/api/v1/events"


def _event(slug, key, kind="agent", label="approve", hours=2.5, **extra):
    return {"agent": slug, "request_key": key, "kind": kind, "label": label,
            "occurred_at": (T0 + timedelta(hours=hours)).isoformat(), **extra}


def _hour(moment):
    return moment.replace(minute=0, second=0, microsecond=0)


def _recount():
    """What the rollups must hold, recounted from the events table (every event folded)."""
    events = list(Event.objects.all())
    counts = Counter()
    for e in events:
        if e.rollout_id is not None and e.arm != "other":
            counts[(e.rollout_id, e.stage, _hour(e.occurred_at), e.arm)] += 1
    candidates = {(e.agent_id, e.request_key): e for e in events if e.kind == "agent" and e.arm == "candidate"}
    references = {
        "human": {(e.agent_id, e.request_key): e for e in events if e.kind == "human"},
        "incumbent": {(e.agent_id, e.request_key): e for e in events if e.kind == "agent" and e.arm == "control"},
    }
    pairs, discrepant = Counter(), set()
    for key, a in candidates.items():
        if a.rollout_id is None:
            continue
        for reference, halves in references.items():
            h = halves.get(key)
            if h is None:
                continue
            segment = a.segment or h.segment
            pairs[(a.rollout_id, a.stage, _hour(a.occurred_at), reference, segment, a.label, h.label)] += 1
            if a.label != h.label:
                discrepant.add((a.rollout_id, a.stage, key[0], key[1], reference, segment, a.label, h.label))
    return counts, pairs, discrepant


def _rollups():
    counts = Counter()
    for row in StageHour.objects.all():
        if row.decisions:
            counts[(row.rollout_id, row.stage, row.hour, row.arm)] += row.decisions
    pairs = Counter({(p.rollout_id, p.stage, p.hour, p.reference, p.segment, p.agent_label, p.reference_label): p.pairs
                     for p in PairHour.objects.all()})
    discrepant = set(DiscrepantPair.objects.values_list("rollout_id", "stage", "agent_id", "request_key", "reference",
                                                        "segment", "agent_label", "reference_label"))
    return counts, pairs, discrepant


def _posts(slug):
    """Three deliveries: halves in one post both ways round, humans hours late, agents after their humans, replays."""
    first = []
    for i in range(10):
        agent = _event(slug, f"k{i}", label="approve" if i % 3 else "deny", hours=1.5 + i / 4, segment=f"s{i % 2}",
                       latency_ms=40 * i)
        human = _event(slug, f"k{i}", kind="human", label="approve", hours=3 + i / 4, segment="late")
        if i < 5:
            first += [human, agent] if i % 2 else [agent, human]
        else:
            first.append(agent)
    first.append(_event(slug, "lonely-agent"))
    second = [_event(slug, f"k{i}", kind="human", label="deny", hours=30) for i in range(5, 10)]  # a day later
    second += [_event(slug, f"h{i}", kind="human", label="refer", segment="eu") for i in range(5)]  # agents not yet
    third = [_event(slug, f"h{i}", label="refer" if i % 2 else "approve", hours=0.5) for i in range(5)]
    return [first, second, third + first + second]  # the last one replays everything


@pytest.mark.django_db
@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, None])
def test_any_batch_size_and_arrival_order_gives_the_recount(events_client, shadow_rollout, batch_size):
    slug = shadow_rollout.agent.slug
    for post in _posts(slug):
        events_client.post(URL, {"events": post})
        events_fold(**({"batch_size": batch_size} if batch_size else {}))
    assert UnfoldedEvent.objects.count() == 0
    expected = _recount()
    assert sum(expected[1].values()) == 15  # k0…k9 and h0…h4; the lonely agent never pairs
    assert _rollups() == expected


@pytest.mark.django_db
def test_both_halves_in_one_batch_twice_and_refolding_count_once(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    post = [_event(slug, f"k{i}", label="deny" if i % 4 else "approve") for i in range(8)]
    post += [_event(slug, f"k{i}", kind="human") for i in range(8)]
    events_client.post(URL, {"events": post})
    events_client.post(URL, {"events": post})  # the same batch again: duplicates, nothing queued
    assert UnfoldedEvent.objects.count() == 16
    assert events_fold() == 16
    assert events_fold() == 0
    expected = _recount()
    assert sum(expected[1].values()) == 8 and len(expected[2]) == 6
    assert _rollups() == expected


@pytest.mark.django_db
def test_events_committed_late_with_lower_ids_are_folded_once(events_client, shadow_rollout):
    """An ingestion that took its ids first but committed after a later one: the fold's id range
    passes over ids that are not queued, and folds them, pairs included, when they appear."""
    slug = shadow_rollout.agent.slug
    events_client.post(URL, {"events": [_event(slug, f"k{i}", kind=kind, label="approve" if i % 2 else "deny")
                                         for i in range(12) for kind in ("agent", "human")]})
    # Not visible yet (nor queued): both halves of k3 and k4, and k7's human (its agent is).
    late = [e for e in Event.objects.order_by("pk")
            if e.request_key in ("k3", "k4") or (e.request_key, e.kind) == ("k7", "human")]
    values = [{f.attname: getattr(e, f.attname) for f in Event._meta.concrete_fields} for e in late]
    Event.objects.filter(pk__in=[e.pk for e in late]).delete()
    assert events_fold(batch_size=5) == 19
    assert _rollups() == _recount()
    assert _rollups()[1].total() == 9
    for row in values:  # the late transaction commits: events and their queue rows, old ids
        event = Event.objects.create(**row)
        UnfoldedEvent.of(event).save(force_insert=True)
    assert events_fold(batch_size=5) == 5
    assert UnfoldedEvent.objects.count() == 0
    assert _rollups() == _recount()
    assert _rollups()[1].total() == 12


@pytest.fixture
def _only_postgres(is_postgres):
    if not is_postgres:
        pytest.skip("advisory lock and real concurrent connections: PostgreSQL only")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_folds_racing_with_ingestion_count_each_event_and_pair_once(_only_postgres, monkeypatch):
    monkeypatch.setattr("telemetry.services.fold_soon", lambda: None)  # these threads are the workers
    rollout = rollout_with_history()
    slug = rollout.agent.slug
    posts = []
    for chunk in range(10):  # humans of chunk c arrive with agents of chunk c + 1
        posts.append([_event(slug, f"k{chunk}-{i}", segment="eu") for i in range(30)]
                     + [_event(slug, f"k{chunk - 1}-{i}", kind="human", label="deny" if i % 5 else "approve")
                        for i in range(30) if chunk])
    done = threading.Event()
    failures = []

    def ingest():
        try:
            for post in posts:
                events_ingest(events=post)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            done.set()
            connection.close()

    def fold():
        try:
            while not done.is_set():
                events_fold(batch_size=17)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ingest)] + [threading.Thread(target=fold) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures
    events_fold()
    assert UnfoldedEvent.objects.count() == 0
    expected = _recount()
    assert sum(expected[1].values()) == 270
    assert _rollups() == expected


@pytest.mark.django_db
@pytest.mark.parametrize("batch_size", [1, 4, None])
def test_pairs_against_the_incumbent_version_and_humans_recount(events_client, batch_size):
    """A candidate in shadow beside an incumbent version: both versions' decisions on one request are
    kept, and the candidate's pairs against the incumbent and against humans count once each."""
    from agents.models import Agent
    from tests.factories import AgentVersionFactory

    v1 = AgentVersionFactory(version="1.0.0")
    Agent.objects.filter(pk=v1.agent_id).update(production_version=v1)
    v2 = AgentVersionFactory(agent=Agent.objects.get(pk=v1.agent_id), version="2.0.0")
    rollout = rollout_with_history(version=v2)
    assert rollout.incumbent_version_id == v1.pk
    slug = v1.agent.slug
    posts = [
        [_event(slug, f"k{i}", version="2.0.0", label="approve" if i % 3 else "deny") for i in range(9)],
        # The incumbent acted on every request (no version: routing says v1 acts in shadow) …
        [_event(slug, f"k{i}", label="approve", hours=2.6) for i in range(9)],
        # … and people reviewed a few, some before the candidate's half was folded.
        [_event(slug, f"k{i}", kind="human", label="deny" if i == 0 else "approve", hours=4) for i in (0, 1, 5)],
    ]
    for post in (posts[1], posts[2], posts[0], posts[0] + posts[1]):
        events_client.post(URL, {"events": post})
        events_fold(**({"batch_size": batch_size} if batch_size else {}))
    assert Event.objects.count() == 21  # 9 candidate, 9 incumbent, 3 human: the replay changed nothing
    assert set(Event.objects.filter(kind="agent").values_list("arm", flat=True)) == {"candidate", "control"}
    assert set(Event.objects.filter(kind="human").values_list("arm", flat=True)) == {"label"}
    expected = _recount()
    assert _rollups() == expected
    by_reference = Counter()
    for key, n in expected[1].items():
        by_reference[key[3]] += n
    assert by_reference == {"incumbent": 9, "human": 3}
