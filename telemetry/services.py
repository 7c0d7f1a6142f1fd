"""Writes of the telemetry app: event ingestion (validated, batched, idempotent) and the human side of a pair."""
from __future__ import annotations

import json
import math
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone
from operator import itemgetter
from typing import Annotated, Any, Literal, NamedTuple

import msgspec

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from agents.models import Agent, AgentVersion
from rolloutops import policy
from rolloutops.bucketing import bucket, goes_to_candidate
from rolloutops.db import server_binding_cursor
from rolloutops.exceptions import DomainError

from .models import Arm, Event, EventKind, Outcome, TrafficPeriod, UnfoldedEvent
from .partitions import KEYS
from .tasks import fold_soon

MAX_BATCH = 5_000
MAX_LATENCY_MS = 24 * 3600 * 1000.0  # a day: anything longer is a unit mistake, not a latency
# Rows per INSERT statement on SQLite: 18 parameters a row stays under its 32,766 bound parameters,
# and 1,000-row statements are where multi-row VALUES stops getting faster. PostgreSQL binds 18
# parameters whatever the batch (one text or array a column), so a whole batch is one statement.
INSERT_ROWS = 1_000

_KINDS = frozenset(EventKind.values)
_AGENT = EventKind.AGENT.value  # looked up once, not once an event
_OUTCOMES = frozenset(Outcome.values)
_FIELDS = frozenset({
    "agent", "version", "request_key", "kind", "label", "segment", "confidence", "latency_ms",
    "outcome", "input_hash", "occurred_at", "trace",
})
_COLUMNS = (
    "agent_id", "version_id", "rollout_id", "stage", "arm", "slow", "request_key", "kind", "label", "segment",
    "confidence", "latency_ms", "outcome", "input_hash", "trace", "has_trace", "occurred_at", "received_at",
)


class BatchTooLarge(DomainError):
    status_code = 413


class MalformedBody(DomainError):
    status_code = 422


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    errors: list[dict]


class _Rejected(Exception):
    pass


# --- which rollout, stage and arm an event belongs to --------------------------------------


@dataclass(frozen=True)
class Period:
    """A TrafficPeriod as plain values (ids), or the agent's standing routing before any period."""

    starts_at: datetime | None
    rollout_id: int | None
    stage: str
    mode: str
    active: bool
    traffic_percent: float
    salt: str
    candidate_id: int | None
    incumbent_id: int | None  # None: humans
    latency_limit_ms: float | None

    @property
    def splits_keys(self) -> bool:
        """Whether who acted depends on the request's key (a live rollout's traffic split)."""
        return self.rollout_id is not None and self.active and self.mode == MODE_LIVE

    def acting_version(self, request_key: str) -> int | None:
        """Who acted on this request under this period's routing: a version id, or None for humans
        (the same rules as rollouts.routing)."""
        if self.splits_keys and goes_to_candidate(bucket(self.salt, request_key), self.traffic_percent):
            return self.candidate_id
        return self.incumbent_id


MODE_LIVE, MODE_SHADOW, MODE_OFF = "live", "shadow", "off"
_PERIOD_FIELDS = ("starts_at", "rollout_id", "stage", "mode", "active", "traffic_percent", "salt",
                  "candidate_version_id", "incumbent_version_id", "latency_limit_ms")


class PeriodTimeline:
    """An agent's TrafficPeriods in time order; `at(moment)` is the one that governed `moment`."""

    def __init__(self, periods: list[Period], standing: Period):
        self._periods = periods
        self._starts = [p.starts_at for p in periods]
        self._standing = standing

    def at(self, moment: datetime) -> Period:
        i = bisect_right(self._starts, moment) - 1
        return self._periods[i] if i >= 0 else self._standing


def _standing(incumbent_id: int | None) -> Period:
    return Period(None, None, "", "", False, 0.0, "", None, incumbent_id, None)


def period_timelines(*, agent_ids, incumbents: dict[int, int | None] | None = None) -> dict[int, PeriodTimeline]:
    """Two queries for every agent of a batch: the agents' incumbents (unless given), their periods."""
    agent_ids = list(agent_ids)
    if incumbents is None:
        incumbents = dict(Agent.objects.filter(pk__in=agent_ids).values_list("id", "production_version_id"))
    return _timelines(agent_ids, incumbents, TrafficPeriod.objects.filter(agent_id__in=agent_ids)
                      .order_by("starts_at", "id").values_list("agent_id", *_PERIOD_FIELDS))


def _timelines(agent_ids, incumbents: dict[int, int | None], period_rows) -> dict[int, PeriodTimeline]:
    """The timelines of `period_timelines` from rows of (agent_id, *_PERIOD_FIELDS) in time order."""
    rows: dict[int, list[Period]] = {agent_id: [] for agent_id in agent_ids}
    for agent_id, *values in period_rows:
        rows[agent_id].append(Period(*values))
    # Before an agent's first period, its events fall to the humans who handled it then (or, for an
    # agent set up before periods existed, today's incumbent).
    return {agent_id: PeriodTimeline(periods, _standing(None if periods else incumbents.get(agent_id)))
            for agent_id, periods in rows.items()}


class Attribution(NamedTuple):
    """Where one event belongs (a tuple: one is made for every event of a batch)."""

    rollout_id: int | None
    stage: str
    arm: str
    version_id: int | None
    slow: bool | None


def attribute(period: Period, *, kind: str, request_key: str, version_id: int | None,
              latency_ms: float | None) -> Attribution:
    """The rollout, stage and arm of one event, and the version that decided (docs/architecture.md,
    "Events"). An agent event without a version is the version routing assigned its request (where
    people act, the open rollout's candidate); a human decision has no version."""
    acting = period.acting_version(request_key)
    if kind == EventKind.HUMAN:
        # A human outcome where humans acted (they are the incumbent and the key was theirs);
        # otherwise a label of what an agent decided: a pair's reference, not an outcome.
        arm = Arm.CONTROL if acting is None else Arm.LABEL
        return Attribution(period.rollout_id, period.stage, arm, None, None)
    if version_id is None:
        # Where people act, the only version that can be running is an open rollout's candidate
        # (in shadow beside them, or soaking in staging).
        version_id = acting if acting is not None else period.candidate_id
        if version_id is None:
            raise _Rejected("version is required: people handle this agent's requests at occurred_at and no "
                            "rollout is open, so the deciding version cannot be inferred")
    if period.rollout_id is not None and version_id == period.candidate_id:
        arm = Arm.CANDIDATE
    elif version_id == period.incumbent_id:
        arm = Arm.CONTROL
    else:
        arm = Arm.OTHER
    slow = None
    if latency_ms is not None and period.latency_limit_ms is not None:
        slow = latency_ms > period.latency_limit_ms
    return Attribution(period.rollout_id, period.stage, arm, version_id, slow)


# --- validation ---------------------------------------------------------------------------


# Nesting of a trace (objects and arrays inside each other) and its size once stored: a trace is
# what an agent did, step by step; anything deeper or larger is a bug or an attack on the reader.
MAX_TRACE_DEPTH = 32
MAX_TRACE_BYTES = 256 * 1024


def _storable(value: str, name: str) -> str:
    """Text every database stores and every reader gets back: no NUL (PostgreSQL refuses it in
    text) and no lone surrogate (not encodable as UTF-8)."""
    if "\x00" in value:
        raise _Rejected(f"{name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Rejected(f"{name} contains an unpaired surrogate (not valid Unicode text)") from None
    return value


def _text(item: dict, name: str, *, required: bool, max_length: int) -> str:
    value = item.get(name)
    if value is None or value == "":
        if required:
            raise _Rejected(f"{name} is required")
        return ""
    if not isinstance(value, str):
        raise _Rejected(f"{name} must be a string")
    if len(value) > max_length:
        raise _Rejected(f"{name} is longer than {max_length} characters")
    return _storable(value, name)


def _choice(item: dict, name: str, choices: frozenset[str], default: str | None, message: str) -> str:
    value = item.get(name, default)
    # isinstance first: {} or [] are unhashable, and `in` a frozenset would raise on them.
    if not isinstance(value, str) or value not in choices:
        raise _Rejected(message)
    return value


def _trace(value) -> object:
    """A JSON object or array of finite numbers and storable text, at most MAX_TRACE_DEPTH deep."""
    if value is None:
        return None
    if not isinstance(value, (dict, list)):
        raise _Rejected("trace must be a JSON object or array")
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_TRACE_DEPTH:
            raise _Rejected(f"trace is nested more than {MAX_TRACE_DEPTH} levels deep")
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in children:
            if isinstance(key, str):
                _storable(key, "trace")
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
            elif isinstance(child, str):
                _storable(child, "trace")
            elif isinstance(child, float) and not math.isfinite(child):
                raise _Rejected("trace contains NaN or Infinity (not valid JSON numbers)")
    if len(json.dumps(value)) > MAX_TRACE_BYTES:
        raise _Rejected(f"trace is larger than {MAX_TRACE_BYTES // 1024} KiB")
    return value


def _number(item: dict, name: str, *, low: float, high: float | None = None) -> float | None:
    value = item.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Rejected(f"{name} must be a number")
    # Compare before converting: float() of a 400-digit integer raises, and NaN compares false.
    if isinstance(value, float) and not math.isfinite(value):
        raise _Rejected(f"{name} must be a finite number")
    if value < low or (high is not None and value > high):
        raise _Rejected(f"{name} must be between {low:g} and {high:g}" if high is not None else f"{name} must be >= {low:g}")
    return float(value)


def accepted_window(now: datetime) -> tuple[datetime, datetime]:
    """The occurred_at an event may have: within the raw-event retention, and not in the future
    beyond a little clock skew. Anything else is refused at the door: a year-9999 timestamp once
    made every later read of its rollout's figures fail (docs/decisions.md, "Input")."""
    config = settings.ROLLOUTOPS
    return (now - timedelta(days=config["EVENT_RETENTION_DAYS"]),
            now + timedelta(seconds=config["EVENT_MAX_FUTURE_SECONDS"]))


def _moment(item: dict, window: tuple[datetime, datetime]) -> datetime:
    return _moment_text(item.get("occurred_at"), window)


def _moment_text(raw, window: tuple[datetime, datetime]) -> datetime:
    if not isinstance(raw, str) or not raw:
        raise _Rejected("occurred_at is required (ISO 8601 with a UTC offset, e.g. 2026-01-31T12:00:00Z)")
    return _moment_storable(_storable(raw, "occurred_at"), window)


def _moment_storable(raw: str, window: tuple[datetime, datetime]) -> datetime:
    """`_moment_text` of a non-empty text known storable (the decoder refuses what `_storable` would)."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise _Rejected(f"occurred_at is not an ISO 8601 date-time: {raw[:40]!r}") from None
    if moment.tzinfo is None:
        # Without an offset the hour it belongs to is a guess; runtimes must say.
        raise _Rejected("occurred_at needs a UTC offset (e.g. 2026-01-31T12:00:00Z)")
    if moment.tzinfo is not dt_timezone.utc:  # an offset of zero is read as UTC itself: nothing to convert
        try:
            moment = moment.astimezone(dt_timezone.utc)
        except OverflowError:
            raise _Rejected(f"occurred_at is out of range: {raw[:40]!r}") from None
    oldest, newest = window
    if moment < oldest:
        raise _Rejected(f"occurred_at {moment.isoformat()} is older than the retention of raw events "
                        f"({settings.ROLLOUTOPS['EVENT_RETENTION_DAYS']} days)")
    if moment > newest:
        raise _Rejected(f"occurred_at {moment.isoformat()} is in the future (more than "
                        f"{settings.ROLLOUTOPS['EVENT_MAX_FUTURE_SECONDS']} s ahead of the server's clock)")
    return moment


# --- the fast path: a batch decoded and checked by msgspec's compiled decoder ------------------
# (docs/architecture.md, "How a batch of events travels"). The decoder below accepts exactly the
# values the checks above accept, or fewer: whatever it refuses is checked again, event by event,
# by `_row`, which says what is wrong. It cannot see a NUL (valid JSON, refused by PostgreSQL's
# text), so a body holding an escaped one goes the slow way; it refuses lone surrogates, NaN,
# Infinity and numbers beyond a float itself.

_Text = lambda low, high: Annotated[str, msgspec.Meta(min_length=low, max_length=high)]  # noqa: E731
_Number = lambda high: Annotated[float, msgspec.Meta(ge=0.0, le=high)]  # noqa: E731


class _EventIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, gc=False):
    agent: _Text(1, 64)
    request_key: _Text(1, 200)
    kind: Literal["agent", "human"]
    label: _Text(1, 200)
    occurred_at: Annotated[str, msgspec.Meta(min_length=1)]  # its text is read by `_moment_storable`
    version: _Text(0, 64) | None = None
    segment: _Text(0, 100) | None = None
    confidence: _Number(1.0) | None = None
    latency_ms: _Number(MAX_LATENCY_MS) | None = None
    outcome: Literal["ok", "error", "timeout", "escalated"] = "ok"
    input_hash: _Text(0, 128) | None = None
    trace: dict[str, Any] | list[Any] | None = None


class _Body(msgspec.Struct):
    events: list[_EventIn]


class _RawBody(msgspec.Struct):
    events: list[msgspec.Raw]


_decode_body = msgspec.json.Decoder(_Body).decode
_decode_raw_body = msgspec.json.Decoder(_RawBody).decode
_decode_event = msgspec.json.Decoder(_EventIn).decode
_encode = msgspec.json.encode
_NUL = b"\\u0000"


def _parse(body: bytes) -> list:
    """The body's events: each an `_EventIn` (its fields checked by the decoder) or, where the
    decoder refused it, the JSON value as the standard library reads it (checked by `_row`)."""
    if _NUL not in body:
        try:
            return _decode_body(body).events
        except (msgspec.MsgspecError, RecursionError):
            pass
        try:
            raws = _decode_raw_body(body).events
        except (msgspec.MsgspecError, RecursionError):
            raws = None
        if raws is not None:
            items = []
            for raw in raws:
                try:
                    items.append(_decode_event(raw))
                except (msgspec.MsgspecError, RecursionError):
                    items.append(json.loads(bytes(raw)))
            return items
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedBody("the body is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise MalformedBody("the body must be a JSON object whose `events` is a list of event objects")
    return data["events"]


def _trace_text(trace) -> str:
    """A decoded trace as stored: the encoder's text; the full check where size or depth could be over."""
    try:
        text = _encode(trace)
    except (msgspec.MsgspecError, OverflowError, TypeError):
        text = b""
    # Brackets bound the depth (those inside strings only make this conservative); a text under a
    # sixth of the limit cannot reach it however json.dumps escapes it.
    if not text or len(text) > MAX_TRACE_BYTES // 6 or text.count(b"[") + text.count(b"{") > MAX_TRACE_DEPTH:
        _trace(trace)
        return json.dumps(trace)
    return text.decode()


class _Context:
    """Everything a batch needs from the database, loaded once: agents, versions, routing timelines,
    and whether the batch was stored before."""

    def __init__(self, items: list, now: datetime):
        self.window = accepted_window(now)
        slugs = {item.agent if isinstance(item, _EventIn) else item.get("agent") for item in items
                 if isinstance(item, _EventIn) or (isinstance(item, dict) and isinstance(item.get("agent"), str))}
        self.agents, self.versions, incumbents = {}, {}, {}
        # Whether a sampled event of the batch is stored already (a retry): then, or where nothing
        # was looked at, its statement expects repeats (`_insert_rows`).
        self.seen = True
        period_rows = None
        if slugs:
            # One query for the agents, their incumbents and their versions (ints and text only:
            # nothing for the ORM to convert), one for their routing periods; on PostgreSQL both
            # in one round trip, with the look for the batch's first and last events.
            agents_sql = (f"SELECT a.slug, a.id, a.production_version_id, v.version, v.id "
                          f"FROM {Agent._meta.db_table} a LEFT JOIN {AgentVersion._meta.db_table} v "
                          f"ON v.agent_id = a.id WHERE a.slug IN ({', '.join(['%s'] * len(slugs))})")
            if connection.vendor == "postgresql" and _can_pipeline():
                agent_rows, period_rows, self.seen = _pipelined(agents_sql, list(slugs), _samples(items))
            else:
                with connection.cursor() as cursor:
                    cursor.execute(agents_sql, list(slugs))
                    agent_rows = cursor.fetchall()
            for slug, agent_id, incumbent_id, version, version_id in agent_rows:
                self.agents[slug] = agent_id
                incumbents[agent_id] = incumbent_id
                if version_id is not None:
                    self.versions[(agent_id, version)] = version_id
        if not self.agents:
            self.timelines = {}  # no event can be attributed: nothing to read
        elif period_rows is None:
            self.timelines = period_timelines(agent_ids=list(self.agents.values()), incumbents=incumbents)
        else:
            self.timelines = _timelines(self.agents.values(), incumbents, period_rows)
        self.adapt_datetime = connection.ops.adapt_datetimefield_value
        self._attributions: dict[tuple, Attribution] = {}

    def attribution(self, period: Period, kind: str, request_key: str, version_id: int | None,
                    latency_ms: float | None) -> Attribution:
        """`attribute`, kept for the batch where neither the key nor the latency can change it (no
        traffic split reads the key, no latency limit the latency): a runtime's batch is then a few
        periods, kinds and versions, a thousand events over."""
        if period.splits_keys or (latency_ms is not None and period.latency_limit_ms is not None):
            return attribute(period, kind=kind, request_key=request_key, version_id=version_id, latency_ms=latency_ms)
        # The period by identity: the batch's timelines hold every one of them while it is read.
        key = (id(period), kind, version_id)
        where = self._attributions.get(key)
        if where is None:
            where = self._attributions[key] = attribute(period, kind=kind, request_key=request_key,
                                                        version_id=version_id, latency_ms=None)
        return where


def _can_pipeline() -> bool:
    import psycopg  # here, not at the top: only PostgreSQL deployments load it

    return psycopg.Pipeline.is_supported()  # libpq 14 or later (psycopg[binary] ships one)


def _samples(items: list) -> list[tuple[str, str, str]]:
    """The (agent, request key, kind) of a batch's first and last decoded events: a retried batch
    is stored whole, so either tells it; none if the decoder read no event."""
    decoded = [item for item in (items[0], items[-1]) if type(item) is _EventIn] if items else []
    return list({(item.agent, item.request_key, item.kind) for item in decoded})


def _pipelined(agents_sql: str, slugs: list[str], samples: list[tuple[str, str, str]]) -> tuple[list, list, bool]:
    """PostgreSQL: the agents' rows, their routing periods' rows (as `period_timelines` reads them,
    by slug) and whether any sampled event is stored already (True if none is sampled), the three
    queries sent together."""
    import psycopg  # here, not at the top: only PostgreSQL deployments load it

    periods_sql = (f"SELECT p.agent_id, {', '.join('p.' + name for name in _PERIOD_FIELDS)} "
                   f"FROM {TrafficPeriod._meta.db_table} p JOIN {Agent._meta.db_table} a ON a.id = p.agent_id "
                   f"WHERE a.slug IN ({', '.join(['%s'] * len(slugs))}) ORDER BY p.starts_at, p.id")
    # Each sample one probe of `event_request` (agent, request key) in each partition. The agent
    # as a subquery, not a join: prepared, the join's generic plan took 0.46 ms against 0.12.
    seen_sql = " OR ".join(
        [f"EXISTS (SELECT FROM {Event._meta.db_table} e WHERE e.agent_id = (SELECT id FROM {Agent._meta.db_table} "
         f"WHERE slug = %s) AND e.request_key = %s AND e.kind = %s)"] * len(samples))
    connection.ensure_connection()
    raw = connection.connection
    # Server-side binding cursors: Django's client-side binding ones cannot share a pipeline.
    with raw.pipeline(), psycopg.Cursor(raw) as agents, psycopg.Cursor(raw) as periods, psycopg.Cursor(raw) as seen:
        agents.execute(agents_sql, slugs)
        periods.execute(periods_sql, slugs)
        if samples:
            seen.execute(f"SELECT {seen_sql}", [value for sample in samples for value in sample])
        return agents.fetchall(), periods.fetchall(), seen.fetchone()[0] if samples else True


def _row(item, ctx: _Context, received_at) -> tuple:
    if not isinstance(item, dict):
        raise _Rejected("an event must be a JSON object")
    unknown = set(item) - _FIELDS
    if unknown:
        raise _Rejected(f"unknown field(s): {', '.join(sorted(unknown))}")
    slug = _text(item, "agent", required=True, max_length=64)
    agent_id = ctx.agents.get(slug)
    if agent_id is None:
        raise _Rejected(f"unknown agent {slug!r}")
    request_key = _text(item, "request_key", required=True, max_length=200)
    kind = _choice(item, "kind", _KINDS, None, "kind must be 'agent' or 'human'")
    label = _text(item, "label", required=True, max_length=200)
    segment = _text(item, "segment", required=False, max_length=100)
    outcome = _choice(item, "outcome", _OUTCOMES, Outcome.OK, "outcome must be one of ok, error, timeout, escalated")
    confidence = _number(item, "confidence", low=0.0, high=1.0)
    latency_ms = _number(item, "latency_ms", low=0.0, high=MAX_LATENCY_MS)
    input_hash = _text(item, "input_hash", required=False, max_length=128)
    occurred_at = _moment(item, ctx.window)
    trace = _trace(item.get("trace"))
    version = _text(item, "version", required=False, max_length=64)
    version_id = None
    if version and kind == EventKind.AGENT:  # a human's decision has no version: one given is ignored
        version_id = ctx.versions.get((agent_id, version))
        if version_id is None:
            raise _Rejected(f"unknown version {version!r} of agent {slug!r}")
    # (docs/architecture.md, "How a batch of events travels")
    where = attribute(ctx.timelines[agent_id].at(occurred_at), kind=kind, request_key=request_key,
                      version_id=version_id, latency_ms=latency_ms)
    return _db_row(
        agent_id=agent_id, version_id=where.version_id, rollout_id=where.rollout_id, stage=where.stage, arm=where.arm,
        slow=where.slow, request_key=request_key, kind=kind, label=label, segment=segment, confidence=confidence,
        latency_ms=latency_ms, outcome=outcome, input_hash=input_hash, trace=trace, occurred_at=occurred_at,
        received_at=received_at,
    )


def _db_row(*, trace, occurred_at, received_at, **values) -> tuple:
    ops = connection.ops
    values["trace"] = None if trace is None else json.dumps(trace)
    values["has_trace"] = bool(trace)
    values["occurred_at"] = ops.adapt_datetimefield_value(occurred_at)
    values["received_at"] = ops.adapt_datetimefield_value(received_at)
    return tuple(values[column] for column in _COLUMNS)


def _fast_row(event: _EventIn, ctx: _Context, received_at) -> tuple:
    """`_row` of an event the decoder checked: what is left are the checks against the database's
    agents, versions and routing, and the clock."""
    agent_id = ctx.agents.get(event.agent)
    if agent_id is None:
        raise _Rejected(f"unknown agent {event.agent!r}")
    occurred_at = _moment_storable(event.occurred_at, ctx.window)
    kind, request_key, latency_ms, trace = event.kind, event.request_key, event.latency_ms, event.trace
    version_id = None
    if event.version and kind == _AGENT:
        version_id = ctx.versions.get((agent_id, event.version))
        if version_id is None:
            raise _Rejected(f"unknown version {event.version!r} of agent {event.agent!r}")
    rollout_id, stage, arm, version_id, slow = ctx.attribution(
        ctx.timelines[agent_id].at(occurred_at), kind, request_key, version_id, latency_ms)
    # The order of _COLUMNS.
    return (agent_id, version_id, rollout_id, stage, arm, slow, request_key, kind, event.label, event.segment or "",
            event.confidence, latency_ms, event.outcome, event.input_hash or "",
            None if trace is None else _trace_text(trace), bool(trace), ctx.adapt_datetime(occurred_at), received_at)


# --- storage ------------------------------------------------------------------------------


# PostgreSQL gets one array per column and unnest(): the statement text stays small (psycopg
# would otherwise spend longer parsing 16,000 placeholders than the server spends inserting).
_PG_TYPES = {
    "agent_id": "bigint", "version_id": "bigint", "rollout_id": "bigint", "stage": "text", "arm": "text",
    "slow": "boolean", "request_key": "text",
    "kind": "text", "label": "text", "segment": "text", "confidence": "float8", "latency_ms": "float8",
    "outcome": "text", "input_hash": "text", "trace": "text", "has_trace": "boolean", "occurred_at": "timestamptz",
    "received_at": "timestamptz",
}


# Faster still: each column as ONE text, split by the server (string_to_array, in C on both
# sides; binding arrays walks every value in Python, ~5 ms a batch). Text columns are joined by a
# separator that no value holds ("" in the trace column is NULL: no JSON text is empty; the other
# text columns have no NULLs). Numbers and flags are msgspec's JSON of the whole column, its
# brackets taken off: one call in C, where str() of each value costs ~1 ms a batch of 1,000; `null`
# is NULL, and none of these values holds a comma. Moments are the exception (`_array_sql`).
_SEP = "\x1f"


def _array_sql(column: str) -> str:
    """The SQL that makes a column's array of its parameter from `_joined`."""
    kind = _PG_TYPES[column]
    if kind == "timestamptz":
        # Bound in binary: PostgreSQL reads a thousand date-time texts in ~0.45 ms, eight-byte
        # integers in ~0.1, and psycopg packs them in ~0.15 ms.
        return "%b::timestamptz[]"
    if kind == "text":
        split = "chr(31), ''" if column == "trace" else "chr(31)"
    else:
        split = "',', 'null'"
    return f"string_to_array(%s, {split})::{kind}[]"


def _joined(names: list[str], columns: list[tuple]) -> list | None:
    """The columns' parameters for `_array_sql`: texts `string_to_array` splits (moments as a list,
    bound in binary), or None if a text value holds the separator."""
    out = []
    for name, values in zip(names, columns):
        kind = _PG_TYPES[name]
        if kind == "text":
            text = _SEP.join(["" if value is None else value for value in values] if name == "trace" else values)
            if text.count(_SEP) != len(values) - 1:
                return None
            out.append(text)
        elif kind == "timestamptz":
            out.append(list(values))
        else:
            out.append(_encode(values)[1:-1].decode())
    return out


def _same(values: tuple) -> bool:
    """Whether a column holds one value only (compared in C: `count` with ==)."""
    first = values[0]
    if values.count(first) != len(values):
        return False
    # 0.0 == -0.0, but each is stored as sent: zeros of both signs are two values.
    return not (type(first) is float and first == 0.0 and len({math.copysign(1.0, v) for v in values}) > 1)


# What a stored event's queue row holds: its id, then the columns the fold reads.
_QUEUED = ("id", "rollout_id", *UnfoldedEvent.FOLD_COLUMNS)


def _sqlite_insert_statement(rows: list[tuple]) -> tuple[str, list]:
    """SQLite: the INSERT of up to INSERT_ROWS rows, returning the new rows' ids for `_queue_statement`."""
    # No conflict target: either idempotency constraint (agent decisions per version, human
    # decisions per request) makes a repeat a no-op.
    one = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    sql = (f"INSERT INTO {Event._meta.db_table} ({', '.join(_COLUMNS)}) VALUES {', '.join([one] * len(rows))} "
           f"ON CONFLICT DO NOTHING RETURNING {', '.join(_QUEUED)}")
    return sql, [value for row in rows for value in row]


def _pg_insert_statement(rows: list[tuple], *, repeats: bool = True) -> tuple[str, list]:
    """PostgreSQL: ONE statement stores the new rows and queues them for the fold, and answers how
    many were new; `repeats=False` for rows of distinct keys none of which can be stored yet (a
    stored one makes it fail: `_insert_rows`)."""
    table = Event._meta.db_table
    queue = UnfoldedEvent._meta.db_table
    columns = list(zip(*rows))
    # A column whose value is the same in every row (a runtime's batch: one agent, rollout and
    # stage, one arrival time, mostly one outcome) is bound once, not split and cast a
    # thousand times; only the others are unnested.
    names, varying, constants = [], [], []
    for name, values in zip(_COLUMNS, columns):
        # The key is always unnested: something to unnest, even in a batch of one event repeated.
        if len(rows) > 1 and name != "request_key" and _same(values):
            constants.append((name, values[0]))
        else:
            names.append(name)
            varying.append(values)
    # One row: string_to_array('') is an empty array, not one empty string.
    params = _joined(names, varying) if len(rows) > 1 else None
    if params is not None:
        arrays = ", ".join(_array_sql(name) for name in names)
    else:
        # %b: each column one array bound in binary (no quoting of 18,000 values into text).
        arrays = ", ".join(f"%b::{_PG_TYPES[name]}[]" for name in names)
        params = [list(values) for values in varying]
    bound = "".join(f", %s::{_PG_TYPES[name]} AS {name}" for name, _ in constants)
    params = [value for _, value in constants] + params
    select = ", ".join("u.trace::jsonb" if column == "trace" else f"u.{column}" for column in _COLUMNS)
    # The event table is partitioned (telemetry/partitions.py) and so holds no unique index:
    # the idempotency keys are a table of their own. Each row gets its event id first; the
    # keys new to that table (the first of a key repeated in the batch, as ON CONFLICT takes
    # rows in order) return the ids of the events to store. Expecting no repeat, the keys
    # are inserted plainly (ON CONFLICT's speculative insertion costs ~2 ms a 1,000 keys more)
    # and every row is stored: one key stored before fails the whole statement.
    sequence = f"(SELECT pg_get_serial_sequence('{table}', 'id'))::regclass"
    if repeats:
        on_repeat = "ORDER BY n ON CONFLICT DO NOTHING RETURNING event_id"
        new_ones = "u JOIN keys ON keys.event_id = u.id"
    else:
        on_repeat, new_ones = "", "u"
    sql = (f"WITH u AS MATERIALIZED (SELECT nextval({sequence}) AS id{bound}, u.* FROM unnest({arrays}) "
           f"WITH ORDINALITY AS u({', '.join(names)}, n)), "
           f"keys AS (INSERT INTO {KEYS} (agent_id, version_id, request_key, kind, occurred_at, event_id) "
           f"SELECT agent_id, version_id, request_key, kind, occurred_at, id FROM u {on_repeat}), "
           f"new AS (INSERT INTO {table} (id, {', '.join(_COLUMNS)}) SELECT u.id, {select} "
           f"FROM {new_ones} RETURNING {', '.join(_QUEUED)}), "
           f"queued AS (INSERT INTO {queue} (event_id, {', '.join(_QUEUED[1:])}) SELECT * FROM new) "
           f"SELECT COUNT(*) FROM new")
    return sql, params


def _queue_statement(new: list[tuple]) -> tuple[str, list]:
    queue = UnfoldedEvent._meta.db_table
    one = "(" + ", ".join(["%s"] * len(_QUEUED)) + ")"
    return (f"INSERT INTO {queue} (event_id, {', '.join(_QUEUED[1:])}) VALUES {', '.join([one] * len(new))}",
            [value for row in new for value in row])


# An event's idempotency key in a stored row: agent, version (None for a human), request key, kind.
_KEY = itemgetter(*(_COLUMNS.index(name) for name in ("agent_id", "version_id", "request_key", "kind")))


def _insert_rows(rows: list[tuple], *, seen: bool = True) -> int:
    """Store the rows whose keys are not stored yet and queue them for the fold; returns how many
    were new. `seen=False`: no sampled row was stored before (`_Context.seen`)."""
    if not rows:
        return 0
    if connection.vendor == "postgresql":
        from psycopg.errors import UniqueViolation  # here, not at the top: only PostgreSQL deployments load it

        with _bulk_cursor() as cursor:
            # A batch of new, distinct keys (the usual one) is stored expecting no repeat, as its
            # own transaction; if a key was stored after all (a retry's other events, a race with
            # the same batch) that statement fails having stored nothing, and the one that takes
            # repeats stores the rest. Within a caller's transaction the failure would end it.
            if not seen and not connection.in_atomic_block and len(set(map(_KEY, rows))) == len(rows):
                try:
                    cursor.execute(*_pg_insert_statement(rows, repeats=False))
                    return cursor.fetchone()[0]
                except UniqueViolation as exc:
                    if exc.diag.table_name != KEYS:
                        raise
            cursor.execute(*_pg_insert_statement(rows))
            return cursor.fetchone()[0]
    inserted = 0
    with _bulk_cursor() as cursor:
        for start in range(0, len(rows), INSERT_ROWS):
            cursor.execute(*_sqlite_insert_statement(rows[start:start + INSERT_ROWS]))
            new = cursor.fetchall()
            if new:
                cursor.execute(*_queue_statement(new))
            inserted += len(new)
    return inserted


def _bulk_cursor():
    """Django's cursor, except on PostgreSQL a server-side-binding one on the same connection
    (rolloutops/db.py says why)."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    return server_binding_cursor()


def _schedule_fold() -> None:
    transaction.on_commit(fold_soon)


def events_ingest(*, events: list, actor=None) -> IngestResult:
    """Store a batch of reported events; invalid ones are reported by index and the rest kept.

    Idempotent on (agent, version, request_key) for an agent's decision and (agent, request_key) for
    a human's: an event already stored (a retried batch, or the same key twice in one batch) counts
    as a duplicate and changes nothing.
    """
    policy.check(actor, "events.write")
    return _ingest(events)


def events_ingest_json(*, body: bytes, actor=None) -> IngestResult:
    """`events_ingest` of a request body, `{"events": [...]}` (POST /api/v1/events): decoded and
    checked by a compiled decoder where it can be, with the same answers (docs/architecture.md,
    "How a batch of events travels"). A body that is not such an object: MalformedBody (422)."""
    policy.check(actor, "events.write")
    return _ingest(_parse(body))


def _ingest(events: list) -> IngestResult:
    if len(events) > MAX_BATCH:
        raise BatchTooLarge(f"a batch holds at most {MAX_BATCH:,} events, got {len(events):,}; split it")
    received_at = timezone.now()
    ctx = _Context(events, received_at)
    stored_at = ctx.adapt_datetime(received_at)
    rows, errors = [], []
    for index, item in enumerate(events):
        try:
            rows.append(_fast_row(item, ctx, stored_at) if type(item) is _EventIn else _row(item, ctx, received_at))
        except _Rejected as exc:
            errors.append({"index": index, "detail": str(exc)})
    if connection.vendor == "postgresql":
        # One statement stores the whole batch, its keys and its queue rows: outside a caller's
        # transaction it is a transaction of its own (committed, deferred foreign keys checked, as
        # it returns), so no BEGIN and COMMIT of ours, two round trips a batch fewer.
        accepted = _insert_rows(rows, seen=ctx.seen)
    else:
        with transaction.atomic():
            accepted = _insert_rows(rows)
    if accepted:
        _schedule_fold()  # after the commit: at once outside a transaction, else when it commits
    return IngestResult(accepted=accepted, duplicates=len(rows) - accepted, errors=errors)


def human_decision_record(
    *, agent, request_key: str, label: str, occurred_at: datetime, segment: str = "", version=None
) -> bool:
    """Store the human decision of a pair (kind human, outcome ok); False if it was already stored.

    Called by the escalations app when a reviewer resolves a ticket; attributed to the rollout,
    stage and arm as ingestion does (`version` is accepted for the caller's convenience and
    ignored: no version decided), and schedules the fold after commit.
    """
    if timezone.is_naive(occurred_at):
        occurred_at = timezone.make_aware(occurred_at, dt_timezone.utc)
    agent_id = agent.pk if isinstance(agent, Agent) else int(agent)
    request_key = request_key[:200]
    period = period_timelines(agent_ids=[agent_id])[agent_id].at(occurred_at)
    where = attribute(period, kind=EventKind.HUMAN, request_key=request_key, version_id=None, latency_ms=None)
    row = _db_row(
        agent_id=agent_id, version_id=None, rollout_id=where.rollout_id, stage=where.stage, arm=where.arm, slow=None,
        request_key=request_key, kind=EventKind.HUMAN, label=label[:200], segment=(segment or "")[:100],
        confidence=None, latency_ms=None, outcome=Outcome.OK, input_hash="", trace=None, occurred_at=occurred_at,
        received_at=timezone.now(),
    )
    with transaction.atomic():
        stored = _insert_rows([row]) == 1
        if stored:
            _schedule_fold()
    return stored
