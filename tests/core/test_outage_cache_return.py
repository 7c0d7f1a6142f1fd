"""A rollback decided while the shared cache hangs is in force everywhere once the cache is back,
even when it comes back with the routing entries of before the rollback (issue 11; the generation
of rollouts/routing.py). Uses the private redis-server of tests/core/test_outages.py, so it fails
rather than skips in CI without one."""
import os
import signal
import time

import pytest

from rolloutops.cache import cache_reset_backoff
from rollouts.models import Rollout
from rollouts.routing import routing_cache_clear
from rollouts.services import rollout_start
from tests.core.test_outages import REDIS_PORT, _redis_keys, private_redis, redis_cache  # noqa: F401 - fixtures
from tests.factories import AgentVersionFactory
from tests.rollouts.conftest import FAST_PLAN, make_ready

pytestmark = pytest.mark.django_db


def test_a_rollback_made_while_the_cache_hangs_holds_when_it_comes_back_with_its_old_entries(
        redis_cache, operator, api_client_for):  # noqa: F811
    """Redis frozen (SIGSTOP: it keeps every entry and answers nothing), a rollback, Redis thawed
    with the routing entries of before the rollback: routing follows the rollback at once and never
    serves them (they are keyed by the routing generation, read from the database)."""
    version = make_ready(AgentVersionFactory(), operator)
    rollout = rollout_start(actor=operator, version=version, plan=FAST_PLAN)
    full = rollout.stages.get(name="full")
    Rollout.objects.filter(pk=rollout.pk).update(stage_index=full.position, stage_name="full", mode="live",
                                                 traffic_percent=100)
    routing_cache_clear()
    runtime = api_client_for(operator, "route:read")
    slug = version.agent.slug
    assert runtime.get("/api/v1/route", {"agent": slug, "key": "k"}).json()["handler"] == "agent"
    before = [key for key in _redis_keys(REDIS_PORT) if ":route:" in key]
    assert before

    os.kill(redis_cache.pid, signal.SIGSTOP)
    try:
        rolled = api_client_for(operator).post(f"/api/v1/rollouts/{rollout.pk}/rollback", {"reason": "incident"})
        assert rolled.status_code == 200, rolled.content
        assert runtime.get("/api/v1/route", {"agent": slug, "key": "k"}).json()["handler"] == "human"
    finally:
        os.kill(redis_cache.pid, signal.SIGCONT)

    cache_reset_backoff()
    assert set(before) <= set(_redis_keys(REDIS_PORT)), "the cache came back with its old entries"
    thawed = time.monotonic()
    for fresh_process in (False, True):
        if fresh_process:
            routing_cache_clear()  # a process that starts now, with only the cache to go on
        answer = runtime.get("/api/v1/route", {"agent": slug, "key": "k"})
        assert answer.status_code == 200 and answer.json()["handler"] == "human"
    assert time.monotonic() - thawed < 5
