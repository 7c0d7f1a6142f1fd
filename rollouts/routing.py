"""The hot path: who handles a request (docs/architecture.md, "Routing"). Sticky, monotone buckets.

Routing state is cached in the process, under a *generation*: the newest routing period's id, which
every change of routing writes (telemetry/periods.py). Each process looks the generation up at
most once a second (one index probe), so a rollback is in force everywhere within a second,
whatever the shared cache holds or whether it answers at all; the shared cache is keyed by the
generation too, so an old entry can never come back to life.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import FilteredRelation, Q
from django.utils import timezone

from agents.models import Agent
from rolloutops.bucketing import BUCKETS, bucket, goes_to_candidate
from rolloutops.cache import ProcessCache, cache_get, cache_set
from telemetry.periods import routing_generation

from .models import RolloutState, StageMode

__all__ = ["BUCKETS", "bucket", "goes_to_candidate", "RouteAnswer", "route", "route_from_state", "routing_state",
           "routing_snapshot", "routing_invalidate", "routing_cache_clear"]

log = logging.getLogger("rolloutops.routing")

CACHE_TTL_S = 300
GENERATION_CHECK_S = 1.0  # how stale a process's routing may be after another process changed it
_OPEN = (RolloutState.ACTIVE, RolloutState.PAUSED)
HUMAN, AGENT = "human", "agent"


@dataclass(frozen=True)
class RouteAnswer:
    handler: str  # who acts: "agent" or "human"
    version: str | None  # the acting version, or None when people act
    shadow: bool
    shadow_version: str | None  # the candidate running beside the incumbent in shadow
    rollout: int | None
    stage: str | None
    traffic_percent: float  # the candidate's share now
    bucket: int | None
    state: str | None = None

    def as_dict(self) -> dict:
        return {
            "handler": self.handler, "version": self.version, "shadow": self.shadow,
            "shadow_version": self.shadow_version, "rollout": self.rollout, "stage": self.stage,
            "traffic_percent": self.traffic_percent, "bucket": self.bucket, "state": self.state,
        }


# This process's routing states, valid for one generation of the routing timeline.
_local = ProcessCache(routing_generation, check_s=GENERATION_CHECK_S)


def routing_cache_clear() -> None:
    """Forget this process's routing states (the next look re-reads the generation)."""
    _local.clear()


def _cache_key(agent_slug: str, generation: tuple[int, int]) -> str:
    return f"route:v3:{generation[0]}.{generation[1]}:{agent_slug}"


_STATE_FIELDS = ("id", "slug", "production_version__version", "r__id", "r__state", "r__stage_name", "r__mode",
                 "r__traffic_percent", "r__salt", "r__version__version")


def _agents_with_open_rollout():
    # At most one open rollout per agent (a unique constraint), so this join never repeats an agent.
    return Agent.objects.annotate(r=FilteredRelation("rollouts", condition=Q(rollouts__state__in=_OPEN)))


def _state(row: dict) -> dict:
    rollout = None
    if row["r__id"] is not None:
        rollout = {"id": row["r__id"], "state": row["r__state"], "stage": row["r__stage_name"], "mode": row["r__mode"],
                   "traffic_percent": row["r__traffic_percent"] or 0.0, "salt": row["r__salt"],
                   "candidate": row["r__version__version"]}
    version = row["production_version__version"]
    return {"incumbent": {"handler": AGENT if version else HUMAN, "version": version}, "rollout": rollout}


def routing_state(agent_slug: str) -> dict | None:
    """What routing needs of one agent: its incumbent and its open rollout (None for an unknown agent).
    In-process first, then the shared cache, then one indexed query. Unknown agents are not cached:
    registering one writes no routing period."""
    generation = _local.current_generation()
    state = _local.entries.get(agent_slug)
    if state is not None:
        return state
    key = _cache_key(agent_slug, generation)
    state = cache_get(key)  # a cache outage reads the database, never answers 500 (rolloutops/cache.py)
    if state is None:
        row = _agents_with_open_rollout().filter(slug=agent_slug).values(*_STATE_FIELDS).first()
        if row is None:
            return None
        state = _state(row)
        cache_set(key, state, CACHE_TTL_S)
    _local.put(agent_slug, state, generation)
    return state


def route_from_state(state: dict, request_key: str) -> RouteAnswer:
    """The routing rules, on an agent's state: the candidate takes the keys in its buckets in a live,
    active stage; the incumbent takes every other key, and acts in shadow with the candidate beside it."""
    incumbent = state["incumbent"]
    rollout = state["rollout"]
    if rollout is None:
        return RouteAnswer(incumbent["handler"], incumbent["version"], False, None, None, None, 0.0, None)
    b = bucket(rollout["salt"], request_key)
    common = {"rollout": rollout["id"], "stage": rollout["stage"], "bucket": b, "state": rollout["state"]}
    if rollout["state"] != RolloutState.ACTIVE or rollout["mode"] == StageMode.OFF:
        return RouteAnswer(incumbent["handler"], incumbent["version"], False, None, traffic_percent=0.0, **common)
    if rollout["mode"] == StageMode.SHADOW:
        return RouteAnswer(incumbent["handler"], incumbent["version"], True, rollout["candidate"], traffic_percent=0.0,
                           **common)
    traffic = rollout["traffic_percent"]
    if goes_to_candidate(b, traffic):
        return RouteAnswer(AGENT, rollout["candidate"], False, None, traffic_percent=traffic, **common)
    return RouteAnswer(incumbent["handler"], incumbent["version"], False, None, traffic_percent=traffic, **common)


def route(agent_slug: str, request_key: str) -> RouteAnswer | None:
    """None for an unknown agent."""
    state = routing_state(agent_slug)
    return None if state is None else route_from_state(state, request_key)


def routing_snapshot() -> tuple[dict, str]:
    """Every agent's routing state, as the client library routes from it, and its ETag (a digest of
    the content: it changes exactly when some answer could). One query."""
    agents = {row["slug"]: _state(row) for row in _agents_with_open_rollout().order_by("slug").values(*_STATE_FIELDS)}
    body = json.dumps(agents, sort_keys=True, separators=(",", ":"))
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
    return {"generated_at": timezone.now().isoformat(), "buckets": BUCKETS, "agents": agents}, etag


def routing_invalidate(agent_slug: str) -> None:
    """Call inside the transaction that changes routing (which also writes a routing period, moving
    the generation): this process forgets its states at once and again at commit; the others see
    the new generation within GENERATION_CHECK_S."""
    _local.clear()
    transaction.on_commit(_local.clear)
