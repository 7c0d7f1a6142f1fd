"""Fixtures of the client's tests: a fake rolloutops server, clients pointed at it, and the real
Django live server for the endpoints that exist."""
from __future__ import annotations

import time

import pytest
from django.test.utils import override_settings
from rolloutops_client import Client

from .servers import FakeRolloutops

TOKEN = "rlo_test-token"
SALT = "9f2c4a1b0d3e5f67"


def snapshot_body(**agents) -> dict:
    return {"generated_at": "2026-11-29T10:00:00+00:00", "buckets": 10_000, "agents": agents}


def canary(traffic=5.0, *, incumbent=("agent", "2.3.0"), mode="live", state="active", candidate="2.4.0"):
    return {
        "incumbent": {"handler": incumbent[0], "version": incumbent[1]},
        "rollout": {"id": 12, "state": state, "stage": "canary", "mode": mode, "traffic_percent": traffic,
                    "salt": SALT, "candidate": candidate},
    }


def humans_only():
    return {"incumbent": {"handler": "human", "version": None}, "rollout": None}


def wait_until(predicate, timeout=10.0, interval=0.01):
    """Poll until predicate() is true; the value, or an AssertionError naming the wait."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {predicate.__doc__ or predicate}")


@pytest.fixture
def fake():
    with FakeRolloutops(routing=snapshot_body(**{"claims-triage": canary(), "support-router": humans_only()}),
                        token=TOKEN) as server:
        yield server


@pytest.fixture
def make_client():
    """make_client(url, **options) → a Client closed at the end of the test."""
    made: list[Client] = []

    def make(url, token=TOKEN, **options):
        options.setdefault("flush_at_exit_s", None)
        client = Client(url, token, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close(timeout=1.0)


@pytest.fixture(scope="session")
def live_server(live_server_plain_http, live_server):
    return live_server


@pytest.fixture(scope="session")
def live_server_plain_http():
    # CI runs with production settings, where the site insists on HTTPS; the live server speaks
    # plain HTTP and builds its handler once, so these are switched off before it starts.
    with override_settings(SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False,
                           SECURE_HSTS_SECONDS=0):
        yield
