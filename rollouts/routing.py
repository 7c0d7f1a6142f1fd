"""The hot path: which handler takes a request. Sticky, monotone buckets; one query on a miss."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction
from django.db.models import Case, FilteredRelation, IntegerField, Q, Value, When

from agents.models import Agent

from .models import RolloutState, StageMode

BUCKETS = 10_000
CACHE_TTL_S = 300  # a safety net only: every transition deletes the entry at commit
_MISSING = "missing"


def bucket(salt: str, request_key: str) -> int:
    """Stable across processes and releases (not Python's hash()): sha256 of salt and key."""
    digest = hashlib.sha256(f"{salt}\x1f{request_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def goes_to_agent(bucket_value: int, traffic_percent: float) -> bool:
    # Raising the percentage only adds buckets below the bar: a key never moves back to humans.
    return bucket_value < round(traffic_percent * 100)


@dataclass(frozen=True)
class RouteAnswer:
    handler: str
    shadow: bool
    rollout: int | None
    stage: str | None
    traffic_percent: float
    bucket: int | None
    state: str | None = None
    version: str | None = None

    def as_dict(self) -> dict:
        return {
            "handler": self.handler, "shadow": self.shadow, "rollout": self.rollout, "stage": self.stage,
            "traffic_percent": self.traffic_percent, "bucket": self.bucket, "state": self.state,
            "version": self.version,
        }


def _cache_key(agent_slug: str) -> str:
    return f"route:v1:{agent_slug}"


def routing_state(agent_slug: str) -> dict | None:
    """The rollout that governs an agent's traffic, as a small dict; None for an unknown agent.
    One indexed query on a cache miss: the agent LEFT JOIN its open rollout, else its most
    recent ended one (completed: the agent is in production at 100 %; rolled back: humans)."""
    key = _cache_key(agent_slug)
    state = cache.get(key)
    if state is not None:
        return None if state == _MISSING else state
    open_states = [RolloutState.ACTIVE, RolloutState.PAUSED]
    row = (
        Agent.objects.filter(slug=agent_slug)
        .annotate(r=FilteredRelation("rollouts", condition=Q(rollouts__state__in=[*open_states, RolloutState.COMPLETED, RolloutState.ROLLED_BACK])))
        .annotate(governs=Case(When(r__state__in=open_states, then=Value(0)), default=Value(1), output_field=IntegerField()))
        .values("id", "r__id", "r__state", "r__stage_name", "r__mode", "r__traffic_percent", "r__salt",
                "r__version__version")
        # The open rollout first, else the newest ended one.
        .order_by("governs", "-r__id")
        .first()
    )
    if row is None:
        cache.set(key, _MISSING, CACHE_TTL_S)
        return None
    state = {
        "agent_id": row["id"],
        "rollout": row["r__id"],
        "state": row["r__state"],
        "stage": row["r__stage_name"],
        "mode": row["r__mode"],
        "traffic_percent": row["r__traffic_percent"] or 0.0,
        "salt": row["r__salt"],
        "version": row["r__version__version"],
    }
    cache.set(key, state, CACHE_TTL_S)
    return state


def route(agent_slug: str, request_key: str) -> RouteAnswer | None:
    """None for an unknown agent. Anything but an active live or shadow stage is the human path."""
    state = routing_state(agent_slug)
    if state is None:
        return None
    if state["rollout"] is None:
        return RouteAnswer("human", False, None, None, 0.0, None)
    b = bucket(state["salt"], request_key)
    common = dict(rollout=state["rollout"], stage=state["stage"], bucket=b, state=state["state"], version=state["version"])
    if state["state"] == RolloutState.COMPLETED:
        return RouteAnswer("agent", False, traffic_percent=100.0, **common)
    if state["state"] != RolloutState.ACTIVE:
        return RouteAnswer("human", False, traffic_percent=0.0, **common)
    if state["mode"] == StageMode.SHADOW:
        return RouteAnswer("human", True, traffic_percent=0.0, **common)
    if state["mode"] == StageMode.LIVE:
        traffic = state["traffic_percent"]
        return RouteAnswer("agent" if goes_to_agent(b, traffic) else "human", False, traffic_percent=traffic, **common)
    return RouteAnswer("human", False, traffic_percent=0.0, **common)


def routing_invalidate(agent_slug: str) -> None:
    """Call inside the transaction that changes a rollout: the entry goes when it commits, so no
    process can cache the old state after the change is visible."""
    transaction.on_commit(lambda: cache.delete(_cache_key(agent_slug)))
    cache.delete(_cache_key(agent_slug))
