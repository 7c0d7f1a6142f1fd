"""The shared cache, failing safe: every call answers (a miss, False) instead of raising when the
cache is down, logs it, and counts it. Callers treat a miss as "ask the database".

Reads and writes stop trying for a short back-off after a failure, so an outage costs one failed
connection per back-off per process, not one per request; deletes always try, because a delete
that was skipped while the cache was in fact back could leave a stale entry (an invalidation lost).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT

log = logging.getLogger("rolloutops.cache")

_lock = threading.Lock()
_failures: Counter[str] = Counter()
_skipped: Counter[str] = Counter()
_down_until = 0.0  # monotonic time before which reads and writes do not try
_last_logged = 0.0


def _backoff_seconds() -> float:
    return float(getattr(settings, "CACHE_FAILURE_BACKOFF_SECONDS", 1.0))


def _failed(op: str, key, exc: Exception) -> None:
    global _down_until, _last_logged
    now = time.monotonic()
    with _lock:
        _failures[op] += 1
        _down_until = now + _backoff_seconds()
        # One line per back-off window is enough to see the outage without flooding the log.
        should_log = now - _last_logged >= _backoff_seconds()
        if should_log:
            _last_logged = now
    if should_log:
        log.warning("cache unavailable", extra={"op": op, "key": str(key)[:120], "error": f"{type(exc).__name__}: {exc}"})


def _backing_off(op: str) -> bool:
    if time.monotonic() < _down_until:
        with _lock:
            _skipped[op] += 1
        return True
    return False


def _recovered() -> None:
    global _down_until
    if _down_until:
        _down_until = 0.0


def cache_get(key: str, default=None, *, alias: str = "default"):
    """The cached value, or `default` on a miss or when the cache cannot be reached."""
    if _backing_off("get"):
        return default
    try:
        value = caches[alias].get(key, default)
    except Exception as exc:  # noqa: BLE001 (any backend error is a miss; see the module docstring)
        _failed("get", key, exc)
        return default
    _recovered()
    return value


def cache_get_many(keys, *, alias: str = "default") -> dict:
    """The entries found; {} when the cache cannot be reached."""
    if _backing_off("get_many"):
        return {}
    try:
        found = caches[alias].get_many(list(keys))
    except Exception as exc:  # noqa: BLE001
        _failed("get_many", keys, exc)
        return {}
    _recovered()
    return found


def cache_set(key: str, value, timeout=DEFAULT_TIMEOUT, *, alias: str = "default") -> bool:
    """True when stored."""
    if _backing_off("set"):
        return False
    try:
        caches[alias].set(key, value, timeout)
    except Exception as exc:  # noqa: BLE001
        _failed("set", key, exc)
        return False
    _recovered()
    return True


def cache_add(key: str, value, timeout=DEFAULT_TIMEOUT, *, alias: str = "default") -> bool | None:
    """True when added, False when the key was already there, None when the cache cannot be
    reached (so a debounce can decide to act anyway)."""
    if _backing_off("add"):
        return None
    try:
        added = caches[alias].add(key, value, timeout)
    except Exception as exc:  # noqa: BLE001
        _failed("add", key, exc)
        return None
    _recovered()
    return bool(added)


def cache_delete(key: str, *, alias: str = "default") -> bool:
    """True when the cache answered (whether or not the key existed)."""
    try:
        caches[alias].delete(key)
    except Exception as exc:  # noqa: BLE001
        _failed("delete", key, exc)
        return False
    _recovered()
    return True


def cache_delete_many(keys, *, alias: str = "default") -> bool:
    try:
        caches[alias].delete_many(list(keys))
    except Exception as exc:  # noqa: BLE001
        _failed("delete_many", keys, exc)
        return False
    _recovered()
    return True


def cache_ping(*, alias: str = "default") -> str | None:
    """None when the cache stores and returns a value now (ignoring any back-off), else the error."""
    key = "rolloutops:readyz"
    try:
        backend = caches[alias]
        backend.set(key, 1, 10)
        if backend.get(key) != 1:
            return "wrote a probe value and read back something else"
    except Exception as exc:  # noqa: BLE001
        _failed("ping", key, exc)
        return f"{type(exc).__name__}: {exc}"
    _recovered()
    return None


def cache_failure_counts() -> dict[str, dict[str, int]]:
    """Failures and back-off skips per operation, since this process started."""
    with _lock:
        return {"failed": dict(_failures), "skipped": dict(_skipped)}


def cache_reset_backoff() -> None:
    """Forget a past failure (tests that restart the cache, and nothing else, need this)."""
    global _down_until
    _down_until = 0.0


class ProcessCache:
    """Entries held in this process for one *generation* of what they were read from.

    `generation()` is a cheap read (one small aggregate) that moves whenever an entry could have
    become wrong; it is read at most once per `check_s`, and a new value empties the entries. So a
    change is in force in every process within `check_s`, and at once in the one that made it (it
    calls `clear()` on commit). Used by routing (rollouts/routing.py) and tokens (rolloutops/tokens.py);
    docs/scaling.md measures what it saves."""

    def __init__(self, generation, *, check_s: float, max_entries: int | None = None):
        self._read_generation = generation
        self.check_s = check_s
        self.max_entries = max_entries
        self.lock = threading.Lock()
        self.entries: dict = {}
        self.generation = None
        self.checked_at = 0.0

    def current_generation(self):
        now = time.monotonic()
        if self.generation is None or now - self.checked_at >= self.check_s:
            generation = self._read_generation()
            with self.lock:
                if generation != self.generation:
                    self.entries = {}
                    self.generation = generation
                self.checked_at = now
        return self.generation

    def put(self, key, value, generation) -> None:
        """Keep `value` if it was read under the generation still current (a full table is emptied,
        not evicted one by one)."""
        with self.lock:
            if self.generation == generation:
                if self.max_entries is not None and len(self.entries) >= self.max_entries:
                    self.entries = {}
                self.entries[key] = value

    def clear(self) -> None:
        with self.lock:
            self.entries = {}
            self.generation = None
