"""The routing snapshot: fetched in the background with ETags, trusted until the server has been away
longer than the staleness limit, then the human path (flagged) until it answers again."""
import threading

import pytest
from rolloutops_client import FailSafeReason, Forbidden, Unauthorized, Unreachable, bucket

from .conftest import SALT, canary, humans_only, snapshot_body, wait_until
from .servers import ROUTING, Fault


def test_before_the_first_snapshot_every_route_is_the_flagged_human_path(fake, make_client):
    client = make_client(fake.url, background=False)
    route = client.route("claims-triage", "req-1")
    assert (route.handler, route.fail_safe, route.reason) == ("human", True, FailSafeReason.NO_SNAPSHOT)
    assert client.stats().stale


def test_routes_come_from_the_fetched_snapshot_by_the_contract_rules(fake, make_client):
    client = make_client(fake.url, refresh_s=0.05)
    assert client.wait_ready(5)
    keys = [f"req-{i}" for i in range(2000)]
    answers = [client.route("claims-triage", k) for k in keys]
    for key, got in zip(keys, answers):
        b = bucket(SALT, key)
        assert got.bucket == b and not got.fail_safe
        assert got.version == ("2.4.0" if b < 500 else "2.3.0")
        assert (got.rollout, got.stage, got.traffic_percent, got.state) == (12, "canary", 5.0, "active")
    humans = client.route("support-router", "req-1")
    assert (humans.handler, humans.version, humans.bucket, humans.fail_safe) == ("human", None, None, False)
    unknown = client.route("nobody", "req-1")
    assert (unknown.handler, unknown.fail_safe, unknown.reason) == ("human", True, FailSafeReason.UNKNOWN_AGENT)


def test_unchanged_snapshot_is_revalidated_with_if_none_match_and_a_change_is_picked_up(fake, make_client):
    client = make_client(fake.url, refresh_s=0.05)
    assert client.wait_ready(5)
    wait_until(lambda: len(fake.requests_to(ROUTING)) >= 3)
    first, *later = fake.requests_to(ROUTING)
    assert "If-None-Match" not in first.headers and first.answered == 200
    assert all(s.headers.get("If-None-Match") == fake.etag() and s.answered == 304 for s in later[:2])
    assert client.stats().snapshot_etag == fake.etag()

    fake.routing = snapshot_body(**{"claims-triage": canary(100.0)})
    wait_until(lambda: client.route("claims-triage", "req-1").version == "2.4.0")
    assert client.stats().snapshot_etag == fake.etag()
    # An agent that left the snapshot fails safe.
    assert client.route("support-router", "req-1").reason == FailSafeReason.UNKNOWN_AGENT


@pytest.mark.parametrize("outage", ["down", "503"])
def test_an_outage_keeps_the_snapshot_until_the_limit_then_fails_safe_then_recovers(fake, make_client, outage):
    client = make_client(fake.url, refresh_s=0.05, stale_after_s=1.0)
    assert client.wait_ready(5)
    assert client.route("claims-triage", "req-1").fail_safe is False
    if outage == "down":
        fake.down = True
    else:
        fake.fail_next(ROUTING, *[Fault(status=503) for _ in range(10_000)])
    wait_until(lambda: client.stats().refresh_failures >= 3)
    wait_until(lambda: client.route("claims-triage", "req-1").fail_safe, timeout=5)
    route = client.route("claims-triage", "req-1")
    assert (route.handler, route.version, route.reason) == ("human", None, FailSafeReason.STALE)
    assert client.stats().stale and client.stats().last_refresh_error

    fake.down = False
    fake.faults[ROUTING].clear()
    wait_until(lambda: not client.route("claims-triage", "req-1").fail_safe, timeout=5)
    assert client.route("claims-triage", "req-1").bucket == bucket(SALT, "req-1")
    assert client.stats().refresh_failures == 0


def test_a_snapshot_within_the_limit_is_still_used_while_the_server_is_away(fake, make_client):
    client = make_client(fake.url, background=False, stale_after_s=300)
    client.refresh()
    fake.down = True
    with pytest.raises(Unreachable):
        client.refresh()
    assert client.route("claims-triage", "req-1").fail_safe is False


def test_a_malformed_snapshot_keeps_the_previous_one(fake, make_client):
    client = make_client(fake.url, background=False)
    client.refresh()
    fake.routing = {"agents": "not a map"}
    with pytest.raises(ValueError):
        client.refresh()
    assert client.route("claims-triage", "req-1").version in ("2.3.0", "2.4.0")


def test_refused_tokens_raise_named_errors(fake, make_client):
    with pytest.raises(Unauthorized):
        make_client(fake.url, token="rlo_wrong", background=False).refresh()
    fake.forbidden_tokens.add("rlo_no-scope")
    with pytest.raises(Forbidden) as refused:
        make_client(fake.url, token="rlo_no-scope", background=False).refresh()
    assert refused.value.status == 403 and "scope" in refused.value.detail


def test_routing_from_many_threads_while_snapshots_swap_gives_only_answers_of_a_snapshot(fake, make_client):
    client = make_client(fake.url, background=False)
    client.refresh()
    keys = [f"req-{i}" for i in range(500)]
    allowed = {k: {("2.4.0" if bucket(SALT, k) < round(p * 100) else "2.3.0") for p in (5.0, 50.0)} for k in keys}
    problems: list[str] = []
    stop = threading.Event()

    def router():
        while not stop.is_set():
            for key in keys:
                got = client.route("claims-triage", key)
                if got.fail_safe or got.version not in allowed[key]:
                    problems.append(f"{key}: {got}")

    threads = [threading.Thread(target=router) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(40):
        fake.routing = snapshot_body(**{"claims-triage": canary(50.0 if i % 2 else 5.0),
                                        "support-router": humans_only()})
        client.refresh()
    stop.set()
    for t in threads:
        t.join()
    assert problems == []
