"""When to retry an HTTP call and how long to wait: exponential backoff with jitter, Retry-After honoured."""
from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime


def retryable_status(status: int) -> bool:
    # 429 and 5xx say "later"; every other 4xx says the request itself is wrong.
    return status == 429 or status >= 500


def backoff_s(attempt: int, *, base_s: float, max_s: float) -> float:
    """Delay before retry number `attempt` (1, 2, …): base · 2^(attempt-1), capped, then "equal
    jitter" (half fixed, half random) so that many runtimes restarted together do not retry in step,
    yet none retries at once."""
    ceiling = min(max_s, base_s * 2.0 ** min(attempt - 1, 30))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def retry_after_s(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (RFC 9110: delay-seconds or an HTTP-date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - (now or datetime.now(timezone.utc))).total_seconds())
