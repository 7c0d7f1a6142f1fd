"""Telemetry: a bounded buffer that record() appends to without waiting, and the thread that sends
it to POST /api/v1/events in batches, retrying what may be retried.

Policy (client/README.md, "Telemetry"):
- The buffer holds at most `max_queue` events. When it is full, the NEW event is dropped and
  counted (`dropped`): the caller never waits, and the events already waiting — older, so closer
  to being sent — are kept. Events recorded after close() are dropped the same way.
- The sender wakes when `batch_size` events are waiting or `flush_interval_s` has passed, and
  sends everything waiting, `batch_size` at a time, in order.
- Network errors, 429 and 5xx: the same batch is sent again after an exponential backoff with
  jitter (or the server's Retry-After), for at most `retry_for_s`; then it is given up and
  counted (`failed`). The server is idempotent on the event's identity, so a batch that did
  reach it before the error counts as `duplicates` the second time, never twice.
- 413: the batch is split in halves until it fits. Other 4xx (401, 403, 422): retrying cannot
  help; the batch is counted as `rejected` and the error logged.
- Per-event errors in a 200 answer (`errors: [{index, detail}]`) are logged and counted as
  `rejected`, never retried.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

from .retry import backoff_s, retry_after_s, retryable_status

logger = logging.getLogger("rolloutops_client")

MAX_BATCH = 5_000  # the server refuses larger batches (413)
KINDS = frozenset({"agent", "human"})
OUTCOMES = frozenset({"ok", "error", "timeout", "escalated"})

# One queued event: a plain tuple, cheap to build on the caller's thread; the sender turns it into
# the JSON object. Order: agent, request_key, kind, label, outcome, version, latency_ms, segment,
# confidence, input_hash, trace, occurred_at (epoch seconds, an aware datetime, or ISO text).
QueuedEvent = tuple[str, str, str, str, str, Any, Any, Any, Any, Any, Any, Any]
_OPTIONAL = ("version", "latency_ms", "segment", "confidence", "input_hash", "trace")


@dataclass(frozen=True)
class TelemetryStats:
    """Counters since the client started. Every event record() took ends in exactly one of
    accepted, duplicates, rejected or failed, or is still queued or in flight."""

    queued: int      # waiting in the buffer
    in_flight: int   # in the batch being sent (or waiting to be retried)
    enqueued: int    # taken by record()
    dropped: int     # refused by record(): buffer full, or client closed
    accepted: int    # stored by the server
    duplicates: int  # already stored (a retried batch, a repeated event)
    rejected: int    # refused by the server: per-event errors, or a 4xx for the whole batch
    failed: int      # given up: retried for longer than retry_for_s, or still unsent at close()
    batches: int     # POSTs the server answered with 200
    retries: int     # POSTs sent again after a network error, 429 or 5xx
    last_error: str | None


def event_json(item: QueuedEvent) -> dict[str, Any]:
    agent, request_key, kind, label, outcome, *optional, occurred_at = item
    out: dict[str, Any] = {"agent": agent, "request_key": request_key, "kind": kind, "label": label,
                           "outcome": outcome}
    for name, value in zip(_OPTIONAL, optional):
        if value is not None:
            out[name] = value
    if isinstance(occurred_at, (int, float)):
        out["occurred_at"] = datetime.fromtimestamp(occurred_at, timezone.utc).isoformat()
    elif isinstance(occurred_at, datetime):
        out["occurred_at"] = occurred_at.isoformat()
    else:
        out["occurred_at"] = occurred_at
    return out


_dumps = json.JSONEncoder(default=str, separators=(",", ":")).encode


def encode_batch(items: list[QueuedEvent]) -> bytes:
    # One json call per event, not one for the batch: a single C call over 1,000 events holds the
    # GIL for ~10 ms, stalling the runtime's threads (and their route() calls) that long.
    # default=str: a trace holding a datetime, a Decimal or an exception is sent as its text rather
    # than losing the whole batch to a TypeError in a thread nobody watches.
    return b'{"events":[' + ",".join([_dumps(event_json(i)) for i in items]).encode() + b"]}"


class EventSender:
    """The buffer and its sending thread. put() is the only method on the caller's path."""

    def __init__(self, http: httpx.Client, *, path: str = "/api/v1/events", max_queue: int = 100_000,
                 batch_size: int = 1_000, flush_interval_s: float = 1.0, retry_for_s: float = 600.0,
                 backoff_base_s: float = 0.5, backoff_max_s: float = 30.0):
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH}")
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self._http = http
        self._path = path
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._retry_for_s = retry_for_s
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._items: deque[QueuedEvent] = deque()
        # One lock for the buffer and the counters; flush() waits on it for `settled` to advance.
        self._lock = threading.Lock()
        self._settled_changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._abandon = threading.Event()  # close() ran out of time: stop retrying, count as failed
        self._closed = False
        self._thread: threading.Thread | None = None
        self._enqueued = self._dropped = self._settled = self._in_flight = 0
        self._accepted = self._duplicates = self._rejected = self._failed = 0
        self._batches = self._retries = 0
        self._last_error: str | None = None

    # --- the caller's side ---------------------------------------------------------------------

    def put(self, item: QueuedEvent) -> bool:
        """Queue one event; False (and counted) when it was dropped. Never waits for I/O."""
        with self._lock:
            if self._closed or len(self._items) >= self._max_queue:
                self._dropped += 1
                dropped = self._dropped
                closed = self._closed
            else:
                self._items.append(item)
                self._enqueued += 1
                waiting = len(self._items)
                dropped = 0
        if dropped:
            # Powers of two: the first drop is logged at once, a flood costs a few dozen lines.
            if dropped & (dropped - 1) == 0:
                logger.warning("telemetry %s: %d event(s) dropped so far",
                               "client closed" if closed else f"buffer full ({self._max_queue} events)", dropped)
            return False
        if self._thread is None:
            self._start()
        if waiting == self._batch_size:
            self._wake.set()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event queued before this call has been settled (stored, refused or given
        up). True when that happened within `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._enqueued
        self._wake.set()
        with self._settled_changed:
            while self._settled < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._settled_changed.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Refuse new events, send what is queued for up to `timeout` seconds, then give up on the
        rest (counted as failed). True when everything was settled in time."""
        with self._lock:
            self._closed = True
        done = self.flush(timeout)
        self._abandon.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            # A request already on the wire ends within the HTTP timeout; do not wait longer.
            thread.join(timeout=5.0)
        return done

    def stats(self) -> TelemetryStats:
        with self._lock:
            return TelemetryStats(
                queued=len(self._items), in_flight=self._in_flight, enqueued=self._enqueued, dropped=self._dropped,
                accepted=self._accepted, duplicates=self._duplicates, rejected=self._rejected, failed=self._failed,
                batches=self._batches, retries=self._retries, last_error=self._last_error,
            )

    # --- the sending thread ----------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="rolloutops-client-events", daemon=True)
        self._thread.start()

    def _take(self) -> list[QueuedEvent]:
        with self._lock:
            n = min(self._batch_size, len(self._items))
            batch = [self._items.popleft() for _ in range(n)]
            self._in_flight = n
        return batch

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            while True:
                batch = self._take()
                if not batch:
                    break
                try:
                    if self._abandon.is_set():
                        self._settle(len(batch), failed=len(batch), error="client closed before sending")
                    else:
                        self._deliver(batch)
                except Exception as exc:  # noqa: BLE001 - this thread must outlive any bug
                    logger.exception("telemetry: a batch of %d event(s) was lost", len(batch))
                    self._settle(len(batch), failed=len(batch), error=f"{type(exc).__name__}: {exc}")
            with self._lock:
                if self._closed and self._abandon.is_set() and not self._items:
                    return

    def _settle(self, n: int, *, accepted: int = 0, duplicates: int = 0, rejected: int = 0, failed: int = 0,
                error: str | None = None, batch: bool = False, retry: bool = False) -> None:
        with self._settled_changed:
            self._settled += n
            self._in_flight -= n
            self._accepted += accepted
            self._duplicates += duplicates
            self._rejected += rejected
            self._failed += failed
            self._batches += batch
            if error is not None:
                self._last_error = error
            self._settled_changed.notify_all()

    def _deliver(self, items: list[QueuedEvent]) -> None:
        body = encode_batch(items)
        started = time.monotonic()
        attempt = 0
        while True:
            wait: float | None = None
            try:
                response = self._http.post(self._path, content=body, headers={"Content-Type": "application/json"})
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status == 200:
                    self._account(items, response)
                    return
                if status == 413 and len(items) > 1:
                    half = len(items) // 2
                    self._deliver(items[:half])
                    self._deliver(items[half:])
                    return
                error = f"HTTP {status}: {response.text[:200]}"
                if not retryable_status(status):
                    logger.error("telemetry: %d event(s) refused by the server, not retried: %s", len(items), error)
                    self._settle(len(items), rejected=len(items), error=error)
                    return
                wait = retry_after_s(response.headers.get("Retry-After"))
            attempt += 1
            if wait is None:
                wait = backoff_s(attempt, base_s=self._backoff_base_s, max_s=self._backoff_max_s)
            if time.monotonic() - started + wait > self._retry_for_s:
                logger.error("telemetry: %d event(s) given up after %d attempt(s) over %.0f s: %s",
                             len(items), attempt, time.monotonic() - started, error)
                self._settle(len(items), failed=len(items), error=error)
                return
            with self._lock:
                self._retries += 1
                self._last_error = error
            logger.warning("telemetry: batch of %d event(s) not delivered (%s); retry %d in %.2f s",
                           len(items), error, attempt, wait)
            if self._abandon.wait(wait):
                self._settle(len(items), failed=len(items), error=f"client closed while retrying: {error}")
                return

    def _account(self, items: list[QueuedEvent], response: httpx.Response) -> None:
        try:
            answer = response.json()
            accepted, duplicates = int(answer["accepted"]), int(answer["duplicates"])
            errors = list(answer.get("errors") or [])
        except (ValueError, KeyError, TypeError):
            # A 200 we cannot read: the server took the batch; count it stored rather than resend.
            logger.warning("telemetry: unreadable answer to a batch of %d event(s): %.200s", len(items), response.text)
            self._settle(len(items), accepted=len(items), batch=True)
            return
        for error in errors[:5]:
            index = error.get("index") if isinstance(error, dict) else None
            item = items[index] if isinstance(index, int) and 0 <= index < len(items) else None
            logger.warning("telemetry: event refused (agent=%s request_key=%s kind=%s): %s",
                           item[0] if item else "?", item[1] if item else "?", item[2] if item else "?",
                           error.get("detail") if isinstance(error, dict) else error)
        if len(errors) > 5:
            logger.warning("telemetry: … and %d more refused event(s) in the same batch", len(errors) - 5)
        rejected = len(items) - accepted - duplicates
        self._settle(len(items), accepted=accepted, duplicates=duplicates, rejected=max(rejected, 0), batch=True,
                     error=f"{len(errors)} event(s) refused" if errors else None)
