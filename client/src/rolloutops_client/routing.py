"""The routing rules of client/README.md ("Routing rules"), client side: the bucket function, the
answer for a key, and a snapshot compiled into per-agent plans so that answering costs one hash
and two lookups."""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

logger = logging.getLogger("rolloutops_client")

BUCKETS = 10_000
HANDLERS = frozenset({"agent", "human"})
ACTIVE = "active"
MODE_SHADOW = "shadow"
MODE_LIVE = "live"


def bucket(salt: str, key: str) -> int:
    """The same function as the server's: any key lands in the same bucket on both sides."""
    digest = hashlib.sha256(f"{salt}\x1f{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def goes_to_candidate(bucket_value: int, traffic_percent: float) -> bool:
    # Raising the percentage only adds buckets below the bar: a key never moves back.
    return bucket_value < round(traffic_percent * 100)


class FailSafeReason(StrEnum):
    """Why a route is the fail-safe human path rather than an answer computed from a snapshot."""

    NO_SNAPSHOT = "no_snapshot"      # no snapshot fetched yet
    UNKNOWN_AGENT = "unknown_agent"  # the snapshot has no (valid) entry for this agent
    STALE = "stale"                  # the server has been unreachable longer than stale_after_s


@dataclass(frozen=True, slots=True)
class Route:
    """Who handles a request. `version` is the acting version (None for humans); when `shadow` is
    true, `shadow_version` runs beside the incumbent and its decision is reported separately.
    `fail_safe` marks the human path given without a usable snapshot, `reason` says why."""

    handler: str
    version: str | None
    shadow: bool
    shadow_version: str | None
    rollout: int | None
    stage: str | None
    traffic_percent: float
    bucket: int | None
    state: str | None = None
    fail_safe: bool = False
    reason: FailSafeReason | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reason"] = str(self.reason) if self.reason is not None else None
        return out


def fail_safe_route(reason: FailSafeReason) -> Route:
    return Route("human", None, False, None, None, None, 0.0, None, None, True, reason)


class InvalidEntry(ValueError):
    """An agent's snapshot entry the client cannot route by; that agent fails safe."""


def _incumbent(entry: Mapping[str, Any]) -> tuple[str, str | None]:
    inc = entry.get("incumbent")
    if not isinstance(inc, Mapping):
        raise InvalidEntry("incumbent must be an object")
    handler, version = inc.get("handler"), inc.get("version")
    if handler not in HANDLERS:
        raise InvalidEntry(f"incumbent.handler must be 'agent' or 'human', got {handler!r}")
    if version is not None and not isinstance(version, str):
        raise InvalidEntry("incumbent.version must be a string or null")
    if handler == "agent" and not version:
        raise InvalidEntry("an agent incumbent needs a version")
    return handler, version


def _rollout(entry: Mapping[str, Any]) -> Mapping[str, Any] | None:
    r = entry.get("rollout")
    if r is None:
        return None
    if not isinstance(r, Mapping):
        raise InvalidEntry("rollout must be an object or null")
    if not isinstance(r.get("id"), int) or isinstance(r.get("id"), bool):
        raise InvalidEntry("rollout.id must be an integer")
    for name in ("state", "mode", "salt", "candidate"):
        if not isinstance(r.get(name), str):
            raise InvalidEntry(f"rollout.{name} must be a string")
    if r.get("stage") is not None and not isinstance(r.get("stage"), str):
        raise InvalidEntry("rollout.stage must be a string or null")
    traffic = r.get("traffic_percent")
    if isinstance(traffic, bool) or not isinstance(traffic, (int, float)) or not 0 <= traffic <= 100:
        raise InvalidEntry("rollout.traffic_percent must be a number from 0 to 100")
    return r


def answer_for_bucket(entry: Mapping[str, Any], b: int) -> Route:
    """Rules 2–4 (client/README.md, "Routing rules") for an agent with an open rollout, given the
    key's bucket."""
    handler, version = _incumbent(entry)
    r = _rollout(entry)
    assert r is not None
    common = dict(rollout=r["id"], stage=r.get("stage"), bucket=b, state=r["state"])
    if r["state"] != ACTIVE or r["mode"] not in (MODE_SHADOW, MODE_LIVE):
        # Paused, staging ("off"), or a mode this client does not know: the incumbent acts.
        return Route(handler, version, False, None, traffic_percent=0.0, **common)
    if r["mode"] == MODE_SHADOW:
        return Route(handler, version, True, r["candidate"], traffic_percent=0.0, **common)
    traffic = float(r["traffic_percent"])
    if goes_to_candidate(b, traffic):
        return Route("agent", r["candidate"], False, None, traffic_percent=traffic, **common)
    return Route(handler, version, False, None, traffic_percent=traffic, **common)


def answer(entry: Mapping[str, Any], key: str) -> Route:
    """The route for `key` from one agent's snapshot entry, straight from the rules (the reference
    the compiled plans are tested against)."""
    handler, version = _incumbent(entry)
    r = _rollout(entry)
    if r is None:
        return Route(handler, version, False, None, None, None, 0.0, None)
    return answer_for_bucket(entry, bucket(r["salt"], key))


class AgentPlan:
    """One agent's entry, compiled. Without an open rollout the answer is one shared object. With
    one, the answer depends on the key only through its bucket, so answers are memoised in a table
    of 10,000 slots filled on first use: no lock (a race stores two equal answers, either is
    right), no eviction, at most ~1 MB for an agent whose every bucket has been asked."""

    __slots__ = ("entry", "fixed", "prefix", "table")

    def __init__(self, entry: Mapping[str, Any]):
        self.entry = entry
        r = _rollout(entry)
        _incumbent(entry)
        if r is None:
            self.fixed: Route | None = answer(entry, "")
            self.prefix = b""
            self.table: list[Route | None] = []
        else:
            self.fixed = None
            self.prefix = f"{r['salt']}\x1f".encode("utf-8")
            self.table = [None] * BUCKETS

    def route(self, key: str) -> Route:
        fixed = self.fixed
        if fixed is not None:
            return fixed
        b = int.from_bytes(hashlib.sha256(self.prefix + key.encode("utf-8")).digest()[:8], "big") % BUCKETS
        found = self.table[b]
        if found is None:
            found = self.table[b] = answer_for_bucket(self.entry, b)
        return found


@dataclass(frozen=True)
class Snapshot:
    """A routing snapshot as fetched: its ETag, when the server built it, and the compiled plans."""

    etag: str | None
    generated_at: str | None
    plans: Mapping[str, AgentPlan]
    invalid: Mapping[str, str]  # agent → why its entry was refused (those agents fail safe)

    def entry(self, agent: str) -> Mapping[str, Any] | None:
        plan = self.plans.get(agent)
        return plan.entry if plan is not None else None

    def as_dict(self) -> dict[str, Any]:
        return {"generated_at": self.generated_at, "buckets": BUCKETS,
                "agents": {slug: plan.entry for slug, plan in self.plans.items()}}


class SnapshotError(ValueError):
    """A snapshot body the client cannot use at all; the previous snapshot stays in force."""


def compile_snapshot(body: Any, *, etag: str | None = None) -> Snapshot:
    if not isinstance(body, Mapping) or not isinstance(body.get("agents"), Mapping):
        raise SnapshotError("a routing snapshot is an object with an 'agents' object")
    if body.get("buckets", BUCKETS) != BUCKETS:
        # The threshold rule (traffic × 100) is written for 10,000 buckets: another count would
        # silently route differently from the server.
        raise SnapshotError(f"snapshot uses {body.get('buckets')!r} buckets; this client knows {BUCKETS}")
    plans: dict[str, AgentPlan] = {}
    invalid: dict[str, str] = {}
    for slug, entry in body["agents"].items():
        try:
            if not isinstance(entry, Mapping):
                raise InvalidEntry("an agent entry must be an object")
            plans[str(slug)] = AgentPlan(entry)
        except InvalidEntry as exc:
            invalid[str(slug)] = str(exc)
    if invalid:
        logger.error("routing snapshot: %d agent(s) refused, they fail safe to humans: %s", len(invalid),
                     "; ".join(f"{k}: {v}" for k, v in sorted(invalid.items())[:5]))
    generated_at = body.get("generated_at")
    return Snapshot(etag=etag, generated_at=generated_at if isinstance(generated_at, str) else None,
                    plans=plans, invalid=invalid)
