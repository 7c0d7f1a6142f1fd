"""Routing: sticky, monotone buckets; the human path whenever the agent should not act."""
import pytest

from rollouts.models import Rollout
from rollouts.routing import route, routing_cache_clear
from rollouts.services import rollout_pause, rollout_rollback
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

KEYS = [f"req-{i}" for i in range(10_000)]


def _promote_directly(rollout, stage_name):
    # Routing reads the denormalized row; the promotion path itself is tested in test_promotions.
    stage = rollout.stages.get(name=stage_name)
    Rollout.objects.filter(pk=rollout.pk).update(stage_index=stage.position, stage_name=stage.name, mode=stage.mode,
                                                 traffic_percent=stage.traffic_percent)
    # Written behind the services' back, so no routing period moved the generation: forget by hand.
    from django.core.cache import cache

    cache.clear()
    routing_cache_clear()


def test_unknown_agent_has_no_answer():
    assert route("nobody", "k") is None


def test_agent_without_rollout_routes_to_human():
    agent = AgentFactory()
    answer = route(agent.slug, "k")
    assert answer.handler == "human" and answer.rollout is None and answer.shadow is False


def test_staging_routes_to_human_and_shadow_runs_the_agent_beside(fast_rollout):
    assert route(fast_rollout.agent.slug, "k").handler == "human"
    _promote_directly(fast_rollout, "shadow")
    answer = route(fast_rollout.agent.slug, "k")
    assert (answer.handler, answer.shadow, answer.stage) == ("human", True, "shadow")
    assert (answer.version, answer.shadow_version) == (None, fast_rollout.version.version)


def test_live_stage_routes_its_share_and_same_key_lands_same_place(fast_rollout):
    Rollout.objects.filter(pk=fast_rollout.pk).update(salt="0123456789abcdef")  # a fixed salt: a reproducible share
    _promote_directly(fast_rollout, "expand-25")
    answers = [route(fast_rollout.agent.slug, k) for k in KEYS]
    share = sum(a.handler == "agent" for a in answers) / len(answers)
    assert abs(share - 0.25) <= 0.01
    assert [route(fast_rollout.agent.slug, k).handler for k in KEYS[:50]] == [a.handler for a in answers[:50]]


def test_rollback_takes_effect_at_once_through_the_cache(fast_rollout, operator):
    _promote_directly(fast_rollout, "full")
    assert route(fast_rollout.agent.slug, "k").handler == "agent"  # now cached
    rollout_rollback(actor=operator, rollout=fast_rollout, reason="customer complaints")
    answer = route(fast_rollout.agent.slug, "k")
    assert (answer.handler, answer.version, answer.rollout, answer.traffic_percent) == ("human", None, None, 0)


def test_paused_rollout_routes_to_the_incumbent(fast_rollout, operator):
    _promote_directly(fast_rollout, "full")
    assert route(fast_rollout.agent.slug, "k").handler == "agent"
    rollout_pause(actor=operator, rollout=fast_rollout, reason="investigating")
    answer = route(fast_rollout.agent.slug, "k")
    assert (answer.handler, answer.state, answer.traffic_percent) == ("human", "paused", 0)


def test_route_reads_two_queries_on_a_miss_and_none_on_a_hit(fast_rollout, django_assert_max_num_queries):
    routing_cache_clear()
    with django_assert_max_num_queries(2):  # the routing generation, the agent's state
        route(fast_rollout.agent.slug, "k1")
    with django_assert_max_num_queries(0):
        route(fast_rollout.agent.slug, "k2")


def test_another_process_sees_a_rollback_within_a_second_whatever_the_shared_cache_holds(fast_rollout, operator):
    """A process that cached routing before another one rolled back: it re-reads the generation at
    most a second later, and entries of the old generation (even restored into the shared cache)
    are never read again."""
    import time

    from django.core.cache import cache

    from rollouts import routing

    _promote_directly(fast_rollout, "full")
    assert route(fast_rollout.agent.slug, "k").handler == "agent"
    stale = dict(routing._local.entries)
    stale_generation = routing._local.generation
    rollout_rollback(actor=operator, rollout=fast_rollout, reason="bad answers")
    # This process as if it had not seen the commit (another worker), its shared cache entry restored.
    routing._local.entries, routing._local.generation = stale, stale_generation
    routing._local.checked_at = time.monotonic() - routing.GENERATION_CHECK_S
    cache.set(routing._cache_key(fast_rollout.agent.slug, stale_generation), stale[fast_rollout.agent.slug])
    assert route(fast_rollout.agent.slug, "k").handler == "human"
