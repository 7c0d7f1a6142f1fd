"""record(): never waits, batches by size or time, retries what may be retried, drops the newest
event when the buffer is full, and settles every event exactly once (flush, close)."""
import threading
import time
from datetime import datetime, timezone

import pytest

from .conftest import wait_until
from .servers import EVENTS, Fault


def _record(client, n, *, start=0, agent="claims-triage", **extra):
    return [client.record(agent=agent, request_key=f"req-{i}", label="approve", version="2.4.0", **extra)
            for i in range(start, start + n)]


def test_events_are_sent_in_batches_with_their_fields(fake, make_client):
    client = make_client(fake.url, background=False, batch_size=100, flush_interval_s=60)
    when = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    client.record(agent="claims-triage", request_key="k-0", label="deny", outcome="error", version="2.4.0",
                  latency_ms=12.5, segment="eu", confidence=0.75, input_hash="abc",
                  trace={"steps": [{"tool": "lookup", "at": when}]}, occurred_at=when)
    _record(client, 249, start=1)
    assert client.flush(10)
    posts = fake.requests_to(EVENTS, "POST")
    # 100 waiting wakes the sender at once (flush_interval_s is a minute): full batches, in order.
    assert [len(p.json()["events"]) for p in posts] == [100, 100, 50]
    first = posts[0].json()["events"][0]
    assert first == {"agent": "claims-triage", "request_key": "k-0", "kind": "agent", "label": "deny",
                     "outcome": "error", "version": "2.4.0", "latency_ms": 12.5, "segment": "eu", "confidence": 0.75,
                     "input_hash": "abc", "occurred_at": "2026-03-01T12:00:00+00:00",
                     "trace": {"steps": [{"tool": "lookup", "at": "2026-03-01 12:00:00+00:00"}]}}
    # Without occurred_at: now, with its UTC offset.
    assert posts[0].json()["events"][1]["occurred_at"].endswith("+00:00")
    stats = client.stats().telemetry
    assert (stats.enqueued, stats.accepted, stats.batches, stats.queued, stats.in_flight) == (250, 250, 3, 0, 0)


def test_a_partial_batch_goes_out_after_the_flush_interval(fake, make_client):
    client = make_client(fake.url, background=False, batch_size=1000, flush_interval_s=0.1)
    _record(client, 3)
    wait_until(lambda: client.stats().telemetry.accepted == 3)
    assert len(fake.requests_to(EVENTS)) == 1


@pytest.mark.parametrize("fault", [
    Fault(status=503, headers={"Retry-After": "0"}), Fault(status=429, headers={"Retry-After": "0"}),
    Fault(status=500), Fault(drop=True), Fault(status=503, after=True), Fault(drop=True, after=True),
])
def test_a_batch_is_resent_after_a_transient_failure_and_counted_once(fake, make_client, fault):
    client = make_client(fake.url, background=False, backoff_base_s=0.01, backoff_max_s=0.05)
    fake.fail_next(EVENTS, fault)
    _record(client, 10)
    assert client.flush(10)
    posts = fake.requests_to(EVENTS, "POST")
    assert len(posts) == 2 and posts[0].body == posts[1].body
    assert len(fake.stored) == 10
    stats = client.stats().telemetry
    assert stats.retries == 1 and stats.accepted + stats.duplicates == 10 and stats.failed == 0
    # When the first attempt reached the server, the retry is all duplicates.
    assert stats.duplicates == (10 if fault.after else 0)


def test_retry_after_delays_the_second_attempt(fake, make_client):
    client = make_client(fake.url, background=False, backoff_base_s=0.01)
    fake.fail_next(EVENTS, Fault(status=503, headers={"Retry-After": "1"}))
    started = time.monotonic()
    _record(client, 1)
    wait_until(lambda: len(fake.requests_to(EVENTS)) == 1)
    time.sleep(0.5)
    assert len(fake.requests_to(EVENTS)) == 1, "retried before the server's Retry-After"
    assert client.flush(10)
    assert time.monotonic() - started >= 1.0


def test_refusals_that_retrying_cannot_fix_are_counted_not_retried(fake, make_client):
    client = make_client(fake.url, token="rlo_revoked", background=False)
    _record(client, 4)
    assert client.flush(10)
    assert len(fake.requests_to(EVENTS)) == 1
    stats = client.stats().telemetry
    assert (stats.rejected, stats.accepted, stats.retries) == (4, 0, 0) and "401" in stats.last_error


def test_per_event_errors_are_counted_and_never_retried(fake, make_client, caplog):
    client = make_client(fake.url, background=False)
    fake.per_event_errors["req-1"] = "unknown version '2.4.0' of agent 'claims-triage'"
    _record(client, 3)
    assert client.flush(10)
    assert len(fake.requests_to(EVENTS)) == 1
    stats = client.stats().telemetry
    assert (stats.accepted, stats.rejected) == (2, 1)
    assert "req-1" in caplog.text and "unknown version" in caplog.text


def test_a_batch_too_large_for_the_server_is_split_until_it_fits(fake, make_client):
    client = make_client(fake.url, background=False, batch_size=40, flush_interval_s=60)
    fake.max_batch_events = 10
    _record(client, 40)
    assert client.flush(10)
    assert len(fake.stored) == 40 and client.stats().telemetry.accepted == 40
    assert sorted(len(p.json()["events"]) for p in fake.requests_to(EVENTS) if p.answered == 200) == [10, 10, 10, 10]


def test_a_batch_is_given_up_after_retry_for_s_and_counted_failed(fake, make_client):
    client = make_client(fake.url, background=False, retry_for_s=0.3, backoff_base_s=0.05, backoff_max_s=0.1)
    fake.down = True
    _record(client, 5)
    assert client.flush(10)
    stats = client.stats().telemetry
    assert (stats.failed, stats.accepted, stats.queued, stats.in_flight) == (5, 0, 0, 0) and stats.retries >= 1
    fake.down = False
    _record(client, 2, start=5)
    assert client.flush(10)
    assert client.stats().telemetry.accepted == 2


def test_when_the_buffer_is_full_the_newest_events_are_dropped_and_record_never_waits(fake, make_client):
    client = make_client(fake.url, background=False, max_queue=20, batch_size=5, flush_interval_s=0.01)
    held = threading.Event()
    fake.fail_next(EVENTS, Fault(hold=held))
    _record(client, 5)
    wait_until(lambda: len(fake.requests_to(EVENTS)) == 1)  # the first batch is on the wire, held

    done = threading.Event()
    results: list[bool] = []

    def caller():
        results.extend(_record(client, 30, start=5))
        done.set()

    threading.Thread(target=caller).start()
    # The server is still holding the first batch: record() returned anyway.
    assert done.wait(5), "record() waited for the network"
    assert results == [True] * 20 + [False] * 10
    stats = client.stats().telemetry
    assert (stats.queued, stats.in_flight, stats.dropped, stats.enqueued) == (20, 5, 10, 25)

    held.set()
    assert client.flush(10)
    keys = {key for (_, _, key, _) in fake.stored}
    assert keys == {f"req-{i}" for i in range(25)}  # the oldest kept, the newest 10 dropped
    assert client.stats().telemetry.accepted == 25


def test_close_sends_what_is_queued_and_later_records_are_dropped(fake, make_client):
    client = make_client(fake.url, background=False, flush_interval_s=60)
    _record(client, 7)
    assert client.close(timeout=10)
    assert len(fake.stored) == 7
    assert client.record(agent="claims-triage", request_key="late", label="x") is False
    assert client.stats().telemetry.dropped == 1
    assert client.close() is True  # a second close does nothing


def test_close_gives_up_after_its_timeout_when_the_server_is_away(fake, make_client):
    client = make_client(fake.url, background=False, backoff_base_s=0.05, backoff_max_s=0.1)
    fake.down = True
    _record(client, 6)
    started = time.monotonic()
    assert client.close(timeout=0.5) is False
    assert time.monotonic() - started < 8
    wait_until(lambda: client.stats().telemetry.failed == 6)


def test_flush_reports_false_when_its_timeout_passes(fake, make_client):
    client = make_client(fake.url, background=False, backoff_base_s=0.05, backoff_max_s=0.1)
    fake.down = True
    _record(client, 1)
    assert client.flush(0.3) is False


def test_invalid_kind_outcome_or_naive_time_is_refused_at_once(fake, make_client):
    client = make_client(fake.url, background=False)
    with pytest.raises(ValueError, match="kind"):
        client.record(agent="a", request_key="k", kind="robot", label="x")
    with pytest.raises(ValueError, match="outcome"):
        client.record(agent="a", request_key="k", label="x", outcome="exploded")
    with pytest.raises(ValueError, match="offset"):
        client.record(agent="a", request_key="k", label="x", occurred_at=datetime(2026, 1, 1))


def test_many_threads_recording_at_once_lose_nothing(fake, make_client):
    client = make_client(fake.url, background=False, batch_size=500, flush_interval_s=0.05)

    def caller(t):
        for i in range(1000):
            client.record(agent="claims-triage", request_key=f"t{t}-{i}", label="approve", version="2.4.0")

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.flush(30)
    assert len(fake.stored) == 8000
    stats = client.stats().telemetry
    assert (stats.enqueued, stats.accepted, stats.dropped, stats.duplicates) == (8000, 8000, 0, 0)
