"""Readiness of what the app depends on (database, shared cache, Celery broker), and which
exceptions mean "a dependency is down" rather than "a bug": those answer 503 with Retry-After."""
from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError, connection

from .cache import cache_ping

log = logging.getLogger("rolloutops.probes")

RETRY_AFTER_SECONDS = 5
BROKER_TIMEOUT_SECONDS = 2


def _unavailable_types() -> tuple[type[BaseException], ...]:
    # OperationalError covers a database that refuses connections, restarts, times out or
    # deadlocks; redis' and kombu's connection errors cover a cache or broker read outside the
    # fail-safe wrapper (rolloutops/cache.py).
    types: list[type[BaseException]] = [OperationalError, InterfaceError]
    try:
        import redis.exceptions

        types += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover
        pass
    try:
        import kombu.exceptions

        types.append(kombu.exceptions.OperationalError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


UNAVAILABLE = _unavailable_types()


def dependency_down(exc: BaseException | None) -> str | None:
    """Which dependency an exception says is down ("database", "cache", "broker"), or None."""
    if exc is None or not isinstance(exc, UNAVAILABLE):
        return None
    if isinstance(exc, (OperationalError, InterfaceError)):
        return "database"
    module = type(exc).__module__
    if module.startswith("kombu"):
        return "broker"
    return "cache"


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 (any failure means not ready)
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_broker() -> str | None:
    from .celery import app

    try:
        with app.connection_for_write(connect_timeout=BROKER_TIMEOUT_SECONDS) as conn:
            conn.ensure_connection(max_retries=0)  # fail at once, no back-off sleeps
            conn.default_channel  # noqa: B018 (the Redis transport connects and pings here)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


def dependencies_status() -> dict[str, str | None]:
    """{"database": None | error, "cache": …, "broker": …}; None means it answered."""
    status = {"database": _check_database(), "cache": cache_ping(), "broker": _check_broker()}
    for name, error in status.items():
        if error:
            log.warning("dependency not ready", extra={"dependency": name, "error": error[:300]})
    return status
