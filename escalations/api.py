"""HTTP API of the escalations app (mounted under /api/v1/ by console.api): runtimes open
tickets; reviewers list, claim, renew, release and resolve them. Output is shaped here."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.utils import timezone
from ninja import Field, Query, Router, Schema
from ninja.responses import Status
from pydantic import ConfigDict

from rolloutops.auth import authorize
from rolloutops.inputs import MAX_OFFSET
from rolloutops.schemas import ErrorOut

from . import claims, services
from .models import EscalationTicket, Priority, Reason, TicketStatus
from .selectors import STATUS_FILTERS, ticket_get, tickets_list

router = Router(tags=["escalations"])

StatusFilter = Literal[STATUS_FILTERS]


class AttemptIn(Schema):
    """One step or tool call the agent attempted."""

    model_config = ConfigDict(extra="allow")
    tool: str = Field(..., min_length=1, max_length=200)
    arguments: Any = None
    result: Any = None
    error: Any = None
    duration_ms: float | None = Field(None, ge=0)


class ContextIn(Schema):
    """Everything the agent knew and tried; shown to the reviewer as a timeline."""

    model_config = ConfigDict(extra="allow")
    input: Any = None
    attempts: list[AttemptIn] = Field(default_factory=list, max_length=services.MAX_ATTEMPTS)
    partial_output: Any = None
    confidence: float | None = Field(None, ge=0, le=1)
    segment: str | None = Field(None, max_length=claims.MAX_SEGMENT)


class TicketIn(Schema):
    agent: str = Field(..., min_length=1, max_length=64)
    version: str | None = Field(None, max_length=64)
    request_key: str = Field(..., min_length=1, max_length=services.MAX_REQUEST_KEY)
    reason: Reason
    priority: Priority
    context: ContextIn = Field(default_factory=ContextIn)


class ClaimNextIn(Schema):
    agent: str | None = Field(None, max_length=64)
    reason: Reason | None = None
    priority: Priority | None = None


class ResolveIn(Schema):
    label: str = Field(..., min_length=1, max_length=services.MAX_LABEL,
                       description="the human decision: one of the labels the agent uses (any case)")
    notes: str = Field("", max_length=services.MAX_NOTES)
    new_label: bool = Field(False, description="confirms a label the agent has never used (else 422)")


class ReleaseIn(Schema):
    note: str = Field("", max_length=500)


class TicketOut(Schema):
    id: int
    agent: str
    version: str | None
    rollout: int | None
    request_key: str
    reason: str
    priority: str
    status: str
    claimed_by: str | None
    claimed_at: datetime | None
    lease_expires_at: datetime | None
    due_at: datetime
    sla_breached: bool
    created_at: datetime
    has_context: bool
    context: dict
    resolved_by: str | None
    resolved_at: datetime | None
    resolution_label: str
    resolution_notes: str


class TicketPageOut(Schema):
    count: int
    limit: int
    offset: int
    results: list[TicketOut]


def ticket_out(ticket: EscalationTicket, *, now: datetime | None = None, with_context: bool = True) -> dict:
    now = now or timezone.now()
    return {
        "id": ticket.pk,
        "agent": ticket.agent.slug,
        "version": ticket.version.version if ticket.version_id else None,
        "rollout": ticket.rollout_id,
        "request_key": ticket.request_key,
        "reason": ticket.reason,
        "priority": ticket.priority,
        "status": ticket.status,
        "claimed_by": ticket.claimed_by.get_username() if ticket.claimed_by_id else None,
        "claimed_at": ticket.claimed_at,
        "lease_expires_at": ticket.lease_expires_at,
        "due_at": ticket.due_at,
        "sla_breached": claims.sla_breached(ticket, now),
        "created_at": ticket.created_at,
        "has_context": ticket.has_context,
        "context": ticket.context if with_context else {},
        "resolved_by": ticket.resolved_by.get_username() if ticket.resolved_by_id else None,
        "resolved_at": ticket.resolved_at,
        "resolution_label": ticket.resolution_label,
        "resolution_notes": ticket.resolution_notes,
    }


@router.post("/escalations", response={200: TicketOut, 201: TicketOut, 413: ErrorOut, 422: ErrorOut})
def ticket_open(request, payload: TicketIn):
    """Open a ticket with its context. Idempotent on (agent, request_key): a retry answers 200
    with the ticket already open, the first call 201."""
    principal = authorize(request, "escalation.open")
    ticket, created = services.ticket_open(
        actor=principal.user, agent=payload.agent, version=payload.version, request_key=payload.request_key,
        reason=payload.reason, priority=payload.priority,
        context=payload.context.model_dump(exclude_unset=True, mode="json"),
    )
    ticket = ticket_get(pk=ticket.pk)
    return Status(201 if created else 200, ticket_out(ticket))


@router.get("/escalations", response=TicketPageOut)
def ticket_list(request, status: StatusFilter | None = None, agent: str = "",
                reason: Reason | None = None, priority: Priority | None = None, mine: bool = False,
                limit: int = 50, offset: int = Query(0, ge=0, le=MAX_OFFSET), context: bool = False):
    """The queue (default: open tickets by priority then age). `mine=true`: what you hold.
    Contexts are left out unless `context=true` (they can be large)."""
    principal = authorize(request, "escalation.read")
    limit = max(1, min(limit, 200))
    status = status or (TicketStatus.CLAIMED if mine else TicketStatus.OPEN)
    qs = tickets_list(status=status, agent=agent, reason=reason or "", priority=priority or "",
                      claimed_by=principal.user if mine else None)
    if not context:
        qs = qs.defer("context")
    now = timezone.now()
    rows = [ticket_out(t, now=now, with_context=context) for t in qs[offset:offset + limit]]
    return {"count": qs.count(), "limit": limit, "offset": offset, "results": rows}


@router.get("/escalations/{int:ticket_id}", response={200: TicketOut, 404: ErrorOut})
def ticket_detail(request, ticket_id: int):
    authorize(request, "escalation.read")
    return ticket_out(ticket_get(pk=ticket_id))


@router.post("/escalations/claim-next", response={200: TicketOut, 204: None})
def ticket_claim_next(request, filters: ClaimNextIn | None = None):
    """Claim the most urgent open ticket (optionally of one agent, reason or priority); 204 when none."""
    principal = authorize(request, "escalation.work")
    filters = filters or ClaimNextIn()
    ticket = services.ticket_claim_next(reviewer=principal.user, agent=filters.agent, reason=filters.reason,
                                        priority=filters.priority)
    if ticket is None:
        return Status(204, None)
    return Status(200, ticket_out(ticket))


@router.post("/escalations/{int:ticket_id}/claim", response={200: TicketOut, 404: ErrorOut, 409: ErrorOut})
def ticket_claim(request, ticket_id: int):
    principal = authorize(request, "escalation.work")
    return Status(200, ticket_out(services.ticket_claim(reviewer=principal.user, ticket=ticket_get(pk=ticket_id))))


@router.post("/escalations/{int:ticket_id}/renew", response={200: TicketOut, 404: ErrorOut, 409: ErrorOut})
def ticket_renew(request, ticket_id: int):
    principal = authorize(request, "escalation.work")
    return Status(200, ticket_out(services.ticket_renew(reviewer=principal.user, ticket=ticket_get(pk=ticket_id))))


@router.post("/escalations/{int:ticket_id}/release", response={200: TicketOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut})
def ticket_release(request, ticket_id: int, payload: ReleaseIn | None = None):
    """The claimant gives the ticket back; a manager may release anyone's claim."""
    principal = authorize(request, "escalation.release")
    note = payload.note if payload else ""
    return Status(200, ticket_out(services.ticket_release(actor=principal.user, ticket=ticket_get(pk=ticket_id), note=note)))


@router.post("/escalations/{int:ticket_id}/resolve", response={200: TicketOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut,
                                                                422: ErrorOut})
def ticket_resolve(request, ticket_id: int, payload: ResolveIn):
    """Only the claimant resolves; the label is recorded as the human decision for the request."""
    principal = authorize(request, "escalation.work")
    ticket = services.ticket_resolve(reviewer=principal.user, ticket=ticket_get(pk=ticket_id), label=payload.label,
                                     notes=payload.notes, new_label=payload.new_label)
    return Status(200, ticket_out(ticket))
