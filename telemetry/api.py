"""HTTP API of the telemetry app (mounted under /api/v1/ by console.api): event ingestion and the discrepancy report."""
from __future__ import annotations

from typing import Any

from ninja import Field, Router, Schema

from rolloutops.auth import authorize
from rolloutops.schemas import ErrorOut

from . import services
from .services import MAX_BATCH

router = Router(tags=["telemetry"])

_EVENTS_DESCRIPTION = f"""
Report a batch of up to {MAX_BATCH:,} decisions. Each event is an object with
`agent` (slug), `version`? , `request_key`, `kind` (`agent`|`human`), `label`, `segment`?,
`confidence`? (0–1), `latency_ms`? (≥ 0), `outcome` (`ok`|`error`|`timeout`|`escalated`, default `ok`),
`input_hash`?, `occurred_at` (ISO 8601 **with** a UTC offset), `trace`? (object or array).

**Partial acceptance**: every valid event is stored and every invalid one is reported in
`errors` as `{{"index", "detail"}}` (its position in `events`); the call answers 200 either way.
**Idempotent** on (agent, request_key, kind): an event already stored — a retried batch, or a
repeat inside one batch — counts in `duplicates` and changes nothing, so retry freely.

`version` defaults to the version of the agent's open (active or paused) rollout, else of the
rollout the event falls in; an agent event with neither is refused. A human decision needs none.
Each event is attached to the rollout and stage that were current for its agent at `occurred_at`.
More than {MAX_BATCH:,} events: 413; a body over the server's upload limit: 413.
Statistics are folded in asynchronously: see `pending_events` in the discrepancy report.
"""


class EventsIn(Schema):
    events: list[Any] = Field(..., description=f"up to {MAX_BATCH:,} event objects (fields above)")


class EventErrorOut(Schema):
    index: int
    detail: str


class EventsOut(Schema):
    accepted: int
    duplicates: int
    errors: list[EventErrorOut]


# The body is read by services.events_ingest_json, not by a schema: a compiled decoder checks the
# events in one pass (docs/architecture.md, "How a batch of events travels"). EventsIn documents it.
_EVENTS_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": EventsIn.model_json_schema(ref_template="#/components/schemas/{model}")}}}}


@router.post(
    "/events",
    response={200: EventsOut, 403: ErrorOut, 413: ErrorOut, 422: ErrorOut},
    summary="Report agent and human decisions (batch)",
    description=_EVENTS_DESCRIPTION,
    openapi_extra=_EVENTS_BODY,
)
def events_ingest(request):
    principal = authorize(request, "events.write")
    result = services.events_ingest_json(body=request.body, actor=principal.user)
    return {"accepted": result.accepted, "duplicates": result.duplicates, "errors": result.errors}
