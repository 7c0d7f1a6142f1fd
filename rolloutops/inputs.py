"""Edge validation: what a request may carry before any view, service or query sees it
(docs/hardening.md). One home for the rules every endpoint shares:

- text a database stores and gives back unchanged: no NUL character (PostgreSQL refuses it), no
  unpaired surrogate (not encodable as UTF-8), in the path, the query string, form fields and every
  string of a JSON body, keys included;
- JSON bodies: no NaN or ±Infinity (not JSON; a stored one breaks later reads), nesting at most
  MAX_JSON_DEPTH deep, the size limit answered 413;
- query parameters read by hand: dates that exist, whole numbers within what a database column holds.

The request-wide rules run in rolloutops.middleware.HostileInput; the parameter readers are called by
the views and selectors that read parameters. The ingestion endpoints (INGESTION_PATHS) check their
own bodies item by item, so one bad event is an error for its index and the rest are stored."""
from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, time

from django.utils import timezone
from django.utils.dateparse import date_re

from .exceptions import Invalid

# A JSON body nested deeper than this is refused (an escalation's context, a plan…); events' traces
# have their own, smaller bound (telemetry/services.py).
MAX_JSON_DEPTH = 64
# The largest id, offset or count a 64-bit database column holds.
MAX_BIGINT = 2**63 - 1
# Deepest page of a paginated list a page or the API serves (offset = page × size).
MAX_OFFSET = 1_000_000
# Endpoints whose bodies are checked item by item by their own code (telemetry/services.py).
INGESTION_PATHS = ("/api/v1/events", "/api/v1/otlp/")

_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None."""
    if "\x00" in value:
        return "contains a NUL character"
    if _SURROGATE.search(value):
        return "contains an unpaired surrogate (not valid Unicode text)"
    return None


def clean_text(value: str, *, field: str) -> str:
    """`value` unchanged, or Invalid (422) naming the field."""
    problem = text_problem(value)
    if problem:
        raise Invalid(f"{field} {problem}", field=field)
    return value


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def json_body_problem(body: bytes) -> tuple[str, str] | None:
    """(where, why) for a JSON body that must not reach the endpoint, or None. A body that is not
    JSON at all is left to the endpoint's parser (400)."""
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        return "body", f"nested deeper than {MAX_JSON_DEPTH} levels"
    except ValueError as exc:
        if "is not a JSON number" in str(exc):
            return "body", f"{str(exc).split(' is not')[0]} is not a JSON number (NaN and Infinity are refused)"
        return None  # not JSON, or not UTF-8: the parser's 400
    return json_value_problem(data)


def json_value_problem(data, where: str = "body") -> tuple[str, str] | None:
    """The first string (key or value) that cannot be stored, a nesting deeper than MAX_JSON_DEPTH,
    or a float that is not finite, as (where, why); None when the value is clean. Iterative, so a
    hostile depth cannot exhaust the stack."""
    stack = [(data, where, 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return path, f"nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                return path, problem
        elif isinstance(value, float):
            if not math.isfinite(value):
                return path, "is not a finite number"
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = text_problem(key)
                if problem:
                    return f"{path} (a key)", problem
                stack.append((item, f"{path}.{key}", depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
    return None


def query_date(value: str, *, field: str) -> date | None:
    """A `YYYY-MM-DD` query parameter: None when empty; Invalid when it is not a day that exists
    (2026-02-30 is not)."""
    value = (value or "").strip()
    if not value:
        return None
    match = date_re.fullmatch(value)
    try:
        if match is None:
            raise ValueError
        return date(int(match["year"]), int(match["month"]), int(match["day"]))
    except ValueError:
        raise Invalid(f"{field} must be a date that exists, as YYYY-MM-DD (got {value[:40]!r})", field=field) from None


def day_start(day: date) -> datetime:
    """The first instant of `day` in the current time zone."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def day_end(day: date) -> datetime:
    """The last instant of `day` in the current time zone."""
    return timezone.make_aware(datetime.combine(day, time.max), timezone.get_current_timezone())


def page_number(value: str | None) -> int:
    """A list page's `?page=`: a whole number from 1 to what MAX_OFFSET allows; anything else is page 1,
    anything larger the deepest page (the paginator then shows the last one that exists)."""
    try:
        number = int(str(value or "1").strip())
    except ValueError:
        return 1
    return max(1, min(number, MAX_OFFSET))
