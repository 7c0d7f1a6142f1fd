"""Routing fails safe and fast when the shared cache is down: /route answers from the database, a
rollback commits and is in force at once, and entries the cache comes back with are never read."""
import pytest

from rollouts.models import Rollout
from rollouts.routing import routing_cache_clear
from tests.core.test_outages import REDIS_PORT, _redis_keys, private_redis, redis_cache  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def test_route_and_rollback_work_while_redis_is_down(redis_cache, fast_rollout, operator, api_client_for):  # noqa: F811
    stage = fast_rollout.stages.get(name="full")
    Rollout.objects.filter(pk=fast_rollout.pk).update(stage_index=stage.position, stage_name="full", mode="live",
                                                      traffic_percent=100)
    routing_cache_clear()
    runtime = api_client_for(operator, "route:read")
    slug = fast_rollout.agent.slug
    assert runtime.get("/api/v1/route", {"agent": slug, "key": "k"}).json()["handler"] == "agent"
    assert any(key.endswith(f":{slug}") and ":route:" in key for key in _redis_keys(REDIS_PORT))
    old_keys = _redis_keys(REDIS_PORT)

    redis_cache.kill()
    redis_cache.wait(timeout=10)
    routing_cache_clear()  # as a freshly started web process: nothing in memory, the cache unreachable
    answer = runtime.get("/api/v1/route", {"agent": slug, "key": "k"})
    assert answer.status_code == 200 and answer.json()["handler"] == "agent"
    # The rollback commits whatever the cache's state, and routing follows it at once.
    rolled = api_client_for(operator).post(f"/api/v1/rollouts/{fast_rollout.pk}/rollback", {"reason": "incident"})
    assert rolled.status_code == 200, rolled.content
    assert runtime.get("/api/v1/route", {"agent": slug, "key": "k"}).json()["handler"] == "human"
    assert old_keys  # what an old cache would come back with is keyed by the generation before the rollback
