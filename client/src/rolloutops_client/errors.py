"""Exceptions of the client's synchronous calls (refresh, escalate); the background threads log instead."""
from __future__ import annotations

from typing import Any


class RolloutOpsError(Exception):
    """Base class of every error this package raises."""


class Unreachable(RolloutOpsError):
    """No HTTP answer: connection refused, DNS, timeout (after the call's retries, if any)."""


class ApiError(RolloutOpsError):
    """The server answered with an error status; `detail` is its `{"detail": …}` when it sent one."""

    def __init__(self, status: int, detail: Any = None, *, url: str = ""):
        self.status = status
        self.detail = detail
        self.url = url
        super().__init__(f"HTTP {status} from {url or 'rolloutops'}: {detail}" if detail is not None
                         else f"HTTP {status} from {url or 'rolloutops'}")


class Unauthorized(ApiError):
    """401: the token is unknown, revoked or expired."""


class Forbidden(ApiError):
    """403: the token lacks the scope for the call, or its owner lacks the role."""


class NotFound(ApiError):
    """404: no such endpoint or object."""


class Rejected(ApiError):
    """413 or 422: the request itself is invalid; retrying the same request cannot succeed."""


class ServerError(ApiError):
    """429 or 5xx after the call's retries."""


def error_for(status: int, detail: Any = None, *, url: str = "") -> ApiError:
    if status == 401:
        return Unauthorized(status, detail, url=url)
    if status == 403:
        return Forbidden(status, detail, url=url)
    if status == 404:
        return NotFound(status, detail, url=url)
    if status == 429 or status >= 500:
        return ServerError(status, detail, url=url)
    return Rejected(status, detail, url=url)
