"""The claim rules of the escalation queue: when a ticket may be taken, how long a claim and a
ticket's SLA last, when a ticket is late, what context a reviewer needs. Pure functions of a
ticket's fields and the clock, beside the same "may be taken" rule as a query, so the queue's SQL
and the pages' Python cannot drift apart (docs/architecture.md, "Where each rule lives")."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from .models import TicketStatus

MAX_SEGMENT = 100


def lease_duration() -> timedelta:
    return timedelta(seconds=settings.ROLLOUTOPS["CLAIM_LEASE_SECONDS"])


def sla_duration(priority: str) -> timedelta:
    return timedelta(seconds=settings.ROLLOUTOPS["SLA_SECONDS"][priority])


def lease_active(ticket, now: datetime) -> bool:
    """Held by someone whose lease has not lapsed (a lapsed claim counts as open)."""
    return ticket.status == TicketStatus.CLAIMED and ticket.lease_expires_at is not None and ticket.lease_expires_at > now


def is_claimable(ticket, now: datetime) -> bool:
    """Open, or claimed by someone whose lease has lapsed (not yet swept): both may be taken."""
    return ticket.status == TicketStatus.OPEN or (ticket.status == TicketStatus.CLAIMED and not lease_active(ticket, now))


def claimable_q(now: datetime) -> Q:
    """`is_claimable` as a query."""
    return Q(status=TicketStatus.OPEN) | Q(status=TicketStatus.CLAIMED, lease_expires_at__lte=now)


def claimable_queues_sql(now: datetime) -> list[tuple[str, list]]:
    """`claimable_q` as the two SQL conditions the claim statement picks from (escalations/services.py),
    one for each partial index that keeps them cheap: open tickets; claims whose lease has lapsed.
    The statuses are written into the SQL, not bound: a prepared claim is planned once for every
    call (docs/scaling.md, "Prepared statements"), and only a literal status tells that plan which
    partial index holds the queue."""
    return [(f"status = '{TicketStatus.OPEN.value}'", []),
            (f"status = '{TicketStatus.CLAIMED.value}' AND lease_expires_at <= %s", [now])]


def sla_breached(ticket, now: datetime) -> bool:
    """Resolved after its due time, or still unresolved past it."""
    if ticket.status == TicketStatus.RESOLVED:
        return ticket.resolved_at is not None and ticket.resolved_at > ticket.due_at
    return now > ticket.due_at


def context_segment(context) -> str:
    """The segment a runtime named in a ticket's context: the human decision's segment on resolve."""
    segment = context.get("segment") if isinstance(context, dict) else None
    return str(segment)[:MAX_SEGMENT] if segment not in (None, "") else ""


def context_is_complete(context) -> bool:
    """What the reviewer needs at least: the input, and one thing the agent tried."""
    if not isinstance(context, dict):
        return False
    attempts = context.get("attempts")
    return context.get("input") not in (None, "", {}, []) and isinstance(attempts, list) and len(attempts) > 0
