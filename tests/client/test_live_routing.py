"""The client against the server's real routing snapshot (`GET /api/v1/routing`): for any agent in
any state and any key, the client's in-process answer is the server's `GET /api/v1/route` answer."""
import httpx
import pytest
from django.core.cache import cache
from rolloutops_client import Client, FailSafeReason, bucket
from rolloutops_client.cli import main as cli

from rollouts.models import Rollout
from rollouts.routing import routing_cache_clear
from rollouts.services import rollout_complete, rollout_pause, rollout_rollback, rollout_start
from rolloutops.tokens import token_issue, token_revoke
from tests.factories import AgentFactory, AgentVersionFactory, UserFactory
from tests.rollouts.conftest import FAST_PLAN

from .conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

FIELDS = ("handler", "version", "shadow", "shadow_version", "rollout", "stage", "traffic_percent", "bucket")
KEYS = [f"req-{i}" for i in range(200)]


def _move(rollout, stage_name, **extra):
    # Routing reads the rollout row; promotions themselves are tested in tests/rollouts.
    stage = rollout.stages.get(name=stage_name)
    Rollout.objects.filter(pk=rollout.pk).update(stage_index=stage.position, stage_name=stage.name, mode=stage.mode,
                                                 traffic_percent=stage.traffic_percent, **extra)
    cache.clear()
    routing_cache_clear()  # written behind the services' back: no routing period moved the generation


@pytest.fixture
def operator_token(operator):
    return token_issue(user=operator, scopes="route:read", name="routing-reader")[1]


@pytest.fixture
def fleet(operator):
    """One agent in every routing situation of the contract, by slug."""
    AgentFactory(slug="humans-only")
    staging = rollout_start(actor=operator, version=AgentVersionFactory(agent__slug="in-staging"), plan=FAST_PLAN)
    shadow = rollout_start(actor=operator, version=AgentVersionFactory(agent__slug="in-shadow"), plan=FAST_PLAN)
    _move(shadow, "shadow")
    canary = rollout_start(actor=operator, version=AgentVersionFactory(agent__slug="in-canary"), plan=FAST_PLAN)
    _move(canary, "canary", salt="0123456789abcdef")
    paused = rollout_start(actor=operator, version=AgentVersionFactory(agent__slug="paused"), plan=FAST_PLAN)
    _move(paused, "expand-25")
    rollout_pause(actor=operator, rollout=paused, reason="looking at a complaint")
    rolled = rollout_start(actor=operator, version=AgentVersionFactory(agent__slug="rolled-back"), plan=FAST_PLAN)
    _move(rolled, "expand-10")
    rollout_rollback(actor=operator, rollout=rolled, reason="error rate")
    # An agent in production (its first version's rollout completed) with a second version in canary.
    first = AgentVersionFactory(agent__slug="upgrading", version="2.3.0")
    done = rollout_start(actor=operator, version=first, plan=FAST_PLAN)
    _move(done, "full")
    rollout_complete(actor=None, rollout=Rollout.objects.get(pk=done.pk))  # 2.3.0 becomes the incumbent
    second = rollout_start(actor=operator, version=AgentVersionFactory(agent=first.agent, version="2.4.0"),
                           plan=FAST_PLAN)
    _move(second, "expand-25")
    return {"in-staging": staging, "in-shadow": shadow, "in-canary": canary, "paused": paused, "rolled-back": rolled,
            "upgrading": second}


def _keys_to_compare(entry) -> list[str]:
    """A dozen keys anywhere and, for a live share, keys whose buckets sit on each side of its bar
    (bar - 1, bar, and a few more near it): where two implementations of the rule would part. A
    request to the live server costs ~45 ms, so a few well-chosen keys rather than thousands; the
    bucket function itself is compared on 10,000 keys in test_routing_rules.py."""
    keys = KEYS[:12]
    rollout = entry["rollout"]
    if rollout and rollout["traffic_percent"]:
        bar = round(rollout["traffic_percent"] * 100)
        wanted = {bar - 2, bar - 1, bar, bar + 1}
        for i in range(1_000_000):
            key = f"key-{i}"
            if bucket(rollout["salt"], key) in wanted:
                wanted.discard(bucket(rollout["salt"], key))
                keys.append(key)
                if not wanted:
                    break
    return keys


def test_every_agent_and_key_routes_in_process_exactly_as_the_server_does(live_server, operator_token, fleet):
    with Client(live_server.url, operator_token, background=False, flush_at_exit_s=None) as client:
        client.refresh()
        slugs = ["humans-only", *fleet]
        assert set(slugs) <= set(client.snapshot.plans)
        with httpx.Client() as http:
            for slug in slugs:
                for key in _keys_to_compare(client.snapshot.entry(slug)):
                    response = http.get(f"{live_server.url}/api/v1/route", params={"agent": slug, "key": key},
                                        headers={"Authorization": f"Bearer {operator_token}"})
                    server = {name: response.json()[name] for name in FIELDS}
                    mine = client.route(slug, key)
                    assert not mine.fail_safe
                    assert {name: getattr(mine, name) for name in FIELDS} == server, (slug, key)
        # What the fleet covers, as the contract words it.
        assert client.route("in-shadow", "k").shadow_version == fleet["in-shadow"].version.version
        upgrading = {client.route("upgrading", k).version for k in KEYS}
        assert upgrading == {"2.3.0", "2.4.0"}


def test_the_snapshot_carries_an_etag_and_an_unchanged_one_answers_304(live_server, operator_token, fleet):
    first = httpx.get(f"{live_server.url}/api/v1/routing", headers={"Authorization": f"Bearer {operator_token}"})
    assert first.status_code == 200 and first.headers["ETag"].startswith('"')
    assert "no-cache" in first.headers["Cache-Control"]
    assert first.json()["buckets"] == 10_000
    with Client(live_server.url, operator_token, background=False, flush_at_exit_s=None) as client:
        assert client.refresh() is True
        assert client.refresh() is False  # 304: nothing changed
        etag = client.stats().snapshot_etag
        rollout_rollback(actor=fleet["in-canary"].started_by, rollout=fleet["in-canary"], reason="guardrail")
        assert client.refresh() is True
        assert client.stats().snapshot_etag != etag
        route = client.route("in-canary", "req-1")
        assert (route.handler, route.rollout, route.fail_safe) == ("human", None, False)


def test_a_rollback_reaches_the_background_refresh(live_server, operator_token, fleet, operator):
    with Client(live_server.url, operator_token, refresh_s=0.1, flush_at_exit_s=None) as client:
        assert client.wait_ready(10)
        key = next(k for k in KEYS if client.route("upgrading", k).version == "2.4.0")
        rollout_rollback(actor=operator, rollout=fleet["upgrading"], reason="latency")
        wait_until(lambda: client.route("upgrading", key).version == "2.3.0")
        assert client.route("upgrading", key).rollout is None
        assert client.route("no-such-agent", key).reason == FailSafeReason.UNKNOWN_AGENT


def test_the_cli_checks_a_token_against_the_real_server(live_server, operator, capsys, monkeypatch):
    monkeypatch.setenv("ROLLOUTOPS_URL", live_server.url)
    row, raw = token_issue(user=operator, scopes="route:read", name="cli-ok")
    assert cli(["--token", raw, "check"]) == 0
    assert capsys.readouterr().out.startswith("ok:")
    assert cli(["--token", token_issue(user=operator, scopes="user", name="cli-user")[1], "check"]) == 0
    narrow = token_issue(user=operator, scopes="events:write", name="cli-narrow")[1]
    assert cli(["--token", narrow, "check"]) == 4
    reviewer = UserFactory(username="rhea", roles=["reviewer"])
    assert cli(["--token", token_issue(user=reviewer, scopes="route:read", name="cli-reviewer")[1], "check"]) == 4
    token_revoke(token=row)
    assert cli(["--token", raw, "check"]) == 3
    assert cli(["--token", "rlo_unknown", "check"]) == 3
