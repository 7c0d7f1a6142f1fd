"""PostgreSQL: a batch of new keys is stored expecting no repeat (telemetry/services.py,
`_insert_rows`); a retry, a batch that repeats some stored events, a key twice in one batch and two
requests racing with the same batch each still store every event once, queued once."""
import threading
from datetime import timedelta

import pytest
from django.db import connection

from telemetry import services
from telemetry.models import Event, UnfoldedEvent
from tests.telemetry.factories import T0, rollout_with_history

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

URL = "/api/v1/events"


@pytest.fixture(autouse=True)
def _only_postgres(is_postgres, monkeypatch):
    if not is_postgres:
        pytest.skip("the statement that expects no repeat is PostgreSQL's")
    monkeypatch.setattr("telemetry.services.fold_soon", lambda: None)  # no worker here


@pytest.fixture
def statements(monkeypatch):
    """Whether each batch statement run expected repeats, in order (the real statements run)."""
    seen = []
    real = services._pg_insert_statement

    def spy(rows, **kwargs):
        seen.append(kwargs.get("repeats", True))
        return real(rows, **kwargs)

    monkeypatch.setattr(services, "_pg_insert_statement", spy)
    return seen


def _event(slug, key, kind="agent", label="approve"):
    return {"agent": slug, "request_key": key, "kind": kind, "label": label,
            "occurred_at": (T0 + timedelta(hours=2)).isoformat()}


def _stored():
    return Event.objects.count(), UnfoldedEvent.objects.count()


def test_a_new_batch_expects_no_repeat_and_its_retry_expects_them(events_client, statements):
    slug = rollout_with_history().agent.slug
    body = {"events": [_event(slug, f"k{i}", kind) for i in range(50) for kind in ("agent", "human")]}
    assert events_client.post(URL, body).json() == {"accepted": 100, "duplicates": 0, "errors": []}
    assert events_client.post(URL, body).json() == {"accepted": 0, "duplicates": 100, "errors": []}
    assert statements == [False, True]  # the retry's first event was found stored: no failed statement
    assert _stored() == (100, 100)


def test_stored_events_inside_a_new_batch_fail_its_first_statement_and_the_second_stores_the_rest(
        events_client, statements):
    slug = rollout_with_history().agent.slug
    events_client.post(URL, {"events": [_event(slug, f"old{i}") for i in range(10)]})
    mixed = ([_event(slug, "new-first")] + [_event(slug, f"old{i}") for i in range(10)]
             + [_event(slug, f"old{i}", "human") for i in range(3)] + [_event(slug, "new-last")])
    assert events_client.post(URL, {"events": mixed}).json() == {"accepted": 5, "duplicates": 10, "errors": []}
    assert statements == [False, False, True]  # its first and last were new; the failed one stored nothing
    assert _stored() == (15, 15)
    assert Event.objects.filter(request_key__startswith="old", kind="agent").count() == 10


def test_a_key_twice_in_one_batch_keeps_the_first_without_a_failed_statement(events_client, statements):
    slug = rollout_with_history().agent.slug
    body = {"events": [_event(slug, "k1"), _event(slug, "k2"), _event(slug, "k1", label="deny"), _event(slug, "k3")]}
    assert events_client.post(URL, body).json() == {"accepted": 3, "duplicates": 1, "errors": []}
    assert statements == [True]
    assert Event.objects.get(request_key="k1").label == "approve"
    assert _stored() == (3, 3)


def test_requests_racing_with_the_same_batches_store_each_event_once(api_client_for, operator, statements):
    # Real concurrent connections: both requests find a batch new, both send the statement that
    # expects no repeat; the one that waits on the other's keys fails and then counts duplicates.
    slug = rollout_with_history().agent.slug
    batches = [{"events": [_event(slug, f"b{b}-{i}", kind) for i in range(40) for kind in ("agent", "human")]}
               for b in range(15)]
    clients = [api_client_for(operator, "events:write") for _ in range(2)]
    start = threading.Barrier(2)
    answers, failures = [[], []], []

    def post_all(n):
        try:
            for body in batches:
                start.wait(10)
                answers[n].append(clients[n].post(URL, body).json())
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post_all, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures
    for first, second in zip(*answers):
        assert first["errors"] == second["errors"] == []
        assert (first["accepted"] + second["accepted"], first["duplicates"] + second["duplicates"]) == (80, 80)
    assert _stored() == (15 * 80, 15 * 80)
    assert statements.count(False) > len(batches)  # both sides of a batch expected no repeat: a real race
