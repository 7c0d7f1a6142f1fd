"""The client an agent runtime holds: in-process routing from a snapshot kept fresh in the background,
non-blocking telemetry, escalations."""
from __future__ import annotations

import atexit
import logging
import random
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from . import __version__
from .decision import Decision
from .errors import ApiError, RolloutOpsError, Unreachable, error_for
from .events import KINDS, OUTCOMES, EventSender, TelemetryStats
from .retry import backoff_s, retry_after_s, retryable_status
from .routing import AgentPlan, FailSafeReason, Route, Snapshot, SnapshotError, compile_snapshot, fail_safe_route

logger = logging.getLogger("rolloutops_client")

ROUTING_PATH = "/api/v1/routing"
EVENTS_PATH = "/api/v1/events"
ESCALATIONS_PATH = "/api/v1/escalations"
REASONS = frozenset({"low_confidence", "tool_failure", "policy", "timeout", "other"})
PRIORITIES = frozenset({"P1", "P2", "P3", "P4"})

# Shared answers: the fail-safe path allocates nothing either.
_NO_SNAPSHOT = fail_safe_route(FailSafeReason.NO_SNAPSHOT)
_UNKNOWN_AGENT = fail_safe_route(FailSafeReason.UNKNOWN_AGENT)
_STALE = fail_safe_route(FailSafeReason.STALE)
_monotonic = time.monotonic


@dataclass(frozen=True)
class Ticket:
    """An escalation ticket as the server answered it; `created` is False when the ticket for this
    (agent, request_key) was already open (a retry, or a second escalation of the same request)."""

    id: int
    agent: str
    version: str | None
    rollout: int | None
    request_key: str
    reason: str
    priority: str
    status: str
    due_at: str
    created: bool
    data: Mapping[str, Any]


@dataclass(frozen=True)
class ClientStats:
    """Routing freshness and telemetry counters, for a runtime's own metrics."""

    snapshot_etag: str | None
    snapshot_generated_at: str | None
    snapshot_agents: int
    seconds_since_refresh: float | None  # since the server last answered the snapshot request (200 or 304)
    stale: bool                           # routes are failing safe because of it
    refresh_failures: int                 # consecutive failed refreshes
    last_refresh_error: str | None
    telemetry: TelemetryStats


def _detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if text.startswith("<"):
            # A proxy's or the site's HTML error page: its markup says nothing useful in a log line.
            return f"{response.reason_phrase} (an HTML page, not an API answer)"
        return text[:300] or None
    return body.get("detail", body) if isinstance(body, dict) else body


class Client:
    """Talks to one rolloutops server with one API token (scopes `route:read`, `events:write`,
    `escalations:write`, owned by an operator).

    Threads: route(), record(), decision() and escalate() may be called from any thread. The client
    runs two daemon threads: one refreshes the routing snapshot every `refresh_s`, one sends events.
    Create it after a fork (e.g. in a gunicorn `post_fork` hook), not before: threads do not survive
    fork(). Use it as a context manager, or call close(), to send what is queued before exit.
    """

    def __init__(self, base_url: str, token: str, *, refresh_s: float = 5.0, stale_after_s: float = 300.0,
                 timeout_s: float = 5.0, max_queue: int = 100_000, batch_size: int = 1_000,
                 flush_interval_s: float = 1.0, retry_for_s: float = 600.0, backoff_base_s: float = 0.5,
                 backoff_max_s: float = 30.0, escalate_attempts: int = 3, background: bool = True,
                 flush_at_exit_s: float | None = 2.0, transport: httpx.BaseTransport | None = None):
        """
        refresh_s: how often the snapshot is asked for (a 304 costs the server one cache read).
        stale_after_s: once the server has not answered for this long, route() answers the
            fail-safe human path (flagged) rather than trust an old snapshot.
        timeout_s: HTTP timeout of every call.
        max_queue, batch_size, flush_interval_s, retry_for_s, backoff_base_s, backoff_max_s: the
            telemetry policy (see `rolloutops_client.events`).
        escalate_attempts: tries of escalate() on network errors, 429 and 5xx.
        background: False starts no refresh thread (call refresh() yourself); events are still
            sent by their thread, started on the first record().
        flush_at_exit_s: at interpreter exit, wait this long for queued events (None: not at all).
        transport: an httpx transport, for tests or custom networking.
        """
        if refresh_s <= 0 or stale_after_s <= 0:
            raise ValueError("refresh_s and stale_after_s must be positive")
        self.base_url = base_url.rstrip("/")
        self.refresh_s = refresh_s
        self.stale_after_s = stale_after_s
        self._escalate_attempts = max(1, escalate_attempts)
        self._backoff_base_s = backoff_base_s
        # httpx.Client is documented as shareable between threads; one connection pool for all calls.
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout_s, transport=transport,
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"rolloutops-client/{__version__}"},
        )
        # The hot path reads these two attributes and nothing else that changes: a refresh swaps in a
        # new immutable dict of plans and moves the deadline, each a single atomic store.
        self._plans: Mapping[str, AgentPlan] | None = None
        self._fresh_until = 0.0
        self._snapshot: Snapshot | None = None
        self._refreshed_at: float | None = None
        self._refresh_failures = 0
        self._last_refresh_error: str | None = None
        self._refresh_lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._events = EventSender(
            self._http, path=EVENTS_PATH, max_queue=max_queue, batch_size=batch_size,
            flush_interval_s=flush_interval_s, retry_for_s=retry_for_s, backoff_base_s=backoff_base_s,
            backoff_max_s=backoff_max_s,
        )
        self._refresher: threading.Thread | None = None
        if background:
            self._refresher = threading.Thread(target=self._refresh_loop, name="rolloutops-client-routing",
                                               daemon=True)
            self._refresher.start()
        self._at_exit = None
        if flush_at_exit_s is not None:
            # A weak reference: registering must not keep a discarded client alive.
            ref = weakref.ref(self)

            def at_exit() -> None:
                client = ref()
                if client is not None:
                    client.close(flush_at_exit_s)

            self._at_exit = at_exit
            atexit.register(at_exit)

    # --- routing ---------------------------------------------------------------------------------

    def route(self, agent: str, key: str) -> Route:
        """Who handles request `key` of `agent`, computed in-process (no I/O, no lock). The human
        path, with `fail_safe=True` and a `reason`, before the first snapshot, for an agent the
        snapshot does not have, and once the server has not answered for `stale_after_s`."""
        plans = self._plans
        if plans is None:
            return _NO_SNAPSHOT
        if _monotonic() > self._fresh_until:
            return _STALE
        plan = plans.get(agent)
        if plan is None:
            return _UNKNOWN_AGENT
        return plan.route(key)

    @property
    def snapshot(self) -> Snapshot | None:
        """The snapshot in force (None before the first one)."""
        return self._snapshot

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the first snapshot arrived (True) or `timeout` passed (False)."""
        return self._ready.wait(timeout)

    def refresh(self) -> bool:
        """Ask for the snapshot now. True when a new one was installed, False when the server said
        it is unchanged (304). Raises Unreachable, or an ApiError subclass (Unauthorized, Forbidden,
        NotFound, ServerError…), or SnapshotError for a body it cannot use; the snapshot in force
        then stays, and goes stale after `stale_after_s` without a successful refresh."""
        with self._refresh_lock:
            headers = {"If-None-Match": self._snapshot.etag} if self._snapshot and self._snapshot.etag else {}
            try:
                response = self._http.get(ROUTING_PATH, headers=headers)
            except httpx.TransportError as exc:
                raise Unreachable(f"{self.base_url}{ROUTING_PATH}: {type(exc).__name__}: {exc}") from exc
            if response.status_code == 304 and self._snapshot is not None:
                self._mark_fresh()
                return False
            if response.status_code != 200:
                raise error_for(response.status_code, _detail(response), url=f"{self.base_url}{ROUTING_PATH}")
            try:
                body = response.json()
            except ValueError as exc:
                raise SnapshotError(f"the routing snapshot is not JSON: {exc}") from exc
            snapshot = compile_snapshot(body, etag=response.headers.get("ETag"))
            self._snapshot = snapshot
            self._plans = snapshot.plans
            self._mark_fresh()
            return True

    def _mark_fresh(self) -> None:
        now = _monotonic()
        self._refreshed_at = now
        self._fresh_until = now + self.stale_after_s
        self._ready.set()

    def _refresh_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except (RolloutOpsError, SnapshotError) as exc:
                self._refresh_failed(exc)
            except Exception as exc:  # noqa: BLE001 - the refresher must outlive any bug
                if self._stop.is_set():
                    return  # close() released the connections under a request in flight
                logger.exception("routing: refresh failed unexpectedly")
                self._refresh_failed(exc)
            else:
                if self._refresh_failures:
                    logger.warning("routing: snapshot refreshed again after %d failed attempt(s)",
                                   self._refresh_failures)
                self._refresh_failures = 0
                self._last_refresh_error = None
            # ±10 %: many runtimes started together spread their requests out.
            self._stop.wait(self.refresh_s * random.uniform(0.9, 1.1))

    def _refresh_failed(self, exc: BaseException) -> None:
        self._refresh_failures += 1
        self._last_refresh_error = f"{type(exc).__name__}: {exc}"
        # The first failure and every tenth: an outage of hours logs a line a minute, not a flood.
        if self._refresh_failures == 1 or self._refresh_failures % 10 == 0:
            logger.warning("routing: snapshot refresh failed (%d in a row, %s): %s", self._refresh_failures,
                           "routes fail safe to humans" if self._is_stale() else "still routing from the last snapshot",
                           self._last_refresh_error)
        if isinstance(exc, ApiError) and exc.status in (401, 403):
            logger.error("routing: the server refuses this token (HTTP %d): %s", exc.status, exc.detail)

    def _is_stale(self) -> bool:
        return self._plans is None or _monotonic() > self._fresh_until

    # --- telemetry -------------------------------------------------------------------------------

    def record(self, *, agent: str, request_key: str, kind: str = "agent", label: str, outcome: str = "ok",
               version: str | None = None, latency_ms: float | None = None, segment: str | None = None,
               confidence: float | None = None, input_hash: str | None = None, trace: Any = None,
               occurred_at: datetime | str | None = None) -> bool:
        """Queue one decision for `POST /api/v1/events` and return at once: True when queued, False
        when dropped (buffer full or client closed; counted in stats()). `version`: say it whenever
        you know it — without it the server attributes an agent event to the open rollout's
        candidate. `occurred_at` defaults to now; a datetime must carry its UTC offset. The values
        are read when the batch is sent: do not change a `trace` object after recording it.
        Raises ValueError for a kind or outcome the server would refuse."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}, got {outcome!r}")
        if occurred_at is None:
            moment: Any = time.time()  # formatted by the sender, off the caller's thread
        elif isinstance(occurred_at, datetime):
            if occurred_at.tzinfo is None:
                raise ValueError("occurred_at needs a UTC offset (a timezone-aware datetime)")
            moment = occurred_at
        else:
            moment = occurred_at
        return self._events.put((agent, request_key, kind, label, outcome, version, latency_ms, segment,
                                 confidence, input_hash, trace, moment))

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until the events recorded so far are settled (stored, refused or given up); True
        when that happened within `timeout` seconds."""
        return self._events.flush(timeout)

    def decision(self, agent: str, key: str, *, segment: str | None = None,
                 input_hash: str | None = None) -> Decision:
        """A context manager for one request: routes it, times the block, records the outcome."""
        return Decision(self, agent, key, segment=segment, input_hash=input_hash)

    # --- escalations -----------------------------------------------------------------------------

    def escalate(self, *, agent: str, request_key: str, reason: str, priority: str = "P3",
                 context: Mapping[str, Any] | None = None, version: str | None = None) -> Ticket:
        """Open an escalation ticket (`POST /api/v1/escalations`) and return it. Synchronous. The
        server keeps one ticket per (agent, request_key), so network errors, 429 and 5xx are retried
        `escalate_attempts` times without risk of a second ticket. `context`: `input`, `attempts`
        (a list of `{tool, arguments, result, error, duration_ms}`), `partial_output`,
        `confidence`, `segment`. Raises Unreachable, or an ApiError subclass (Rejected for 422)."""
        if reason not in REASONS:
            raise ValueError(f"reason must be one of {sorted(REASONS)}, got {reason!r}")
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {sorted(PRIORITIES)}, got {priority!r}")
        payload: dict[str, Any] = {"agent": agent, "request_key": request_key, "reason": reason, "priority": priority,
                                   "context": dict(context or {})}
        if version is not None:
            payload["version"] = version
        url = f"{self.base_url}{ESCALATIONS_PATH}"
        for attempt in range(1, self._escalate_attempts + 1):
            wait = None
            try:
                response = self._http.post(ESCALATIONS_PATH, json=payload)
            except httpx.TransportError as exc:
                failure: RolloutOpsError = Unreachable(f"{url}: {type(exc).__name__}: {exc}")
            else:
                if response.status_code in (200, 201):
                    data = response.json()
                    return Ticket(id=data["id"], agent=data["agent"], version=data.get("version"),
                                  rollout=data.get("rollout"), request_key=data["request_key"], reason=data["reason"],
                                  priority=data["priority"], status=data["status"], due_at=data["due_at"],
                                  created=response.status_code == 201, data=data)
                failure = error_for(response.status_code, _detail(response), url=url)
                if not retryable_status(response.status_code):
                    raise failure
                wait = retry_after_s(response.headers.get("Retry-After"))
            if attempt < self._escalate_attempts:
                delay = min(wait if wait is not None else backoff_s(attempt, base_s=0.2, max_s=2.0), 5.0)
                logger.warning("escalate: %s; retry %d in %.2f s", failure, attempt, delay)
                time.sleep(delay)
        raise failure

    # --- lifecycle -------------------------------------------------------------------------------

    def stats(self) -> ClientStats:
        snapshot = self._snapshot
        refreshed = self._refreshed_at
        return ClientStats(
            snapshot_etag=snapshot.etag if snapshot else None,
            snapshot_generated_at=snapshot.generated_at if snapshot else None,
            snapshot_agents=len(snapshot.plans) if snapshot else 0,
            seconds_since_refresh=None if refreshed is None else _monotonic() - refreshed,
            stale=self._is_stale(),
            refresh_failures=self._refresh_failures,
            last_refresh_error=self._last_refresh_error,
            telemetry=self._events.stats(),
        )

    def close(self, timeout: float = 10.0) -> bool:
        """Stop refreshing, send the queued events for up to `timeout` seconds, release connections.
        True when every queued event was settled in time. Calling it again does nothing."""
        if self._closed:
            return True
        self._closed = True
        self._stop.set()
        if self._at_exit is not None:
            atexit.unregister(self._at_exit)
        done = self._events.close(timeout)
        if self._refresher is not None:
            self._refresher.join(timeout=1.0)
        self._http.close()
        return done

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
