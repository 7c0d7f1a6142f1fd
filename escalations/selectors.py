"""Reads on escalation tickets: the queue with its filters, counts, one ticket, its timeline."""
from __future__ import annotations

import json
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from agents.models import Agent
from rolloutops.exceptions import NotFound

from .models import EscalationTicket, Priority, TicketStatus
from .claims import claimable_q

STATUS_FILTERS = (*TicketStatus.values, "all")


def tickets_list(*, status: str = TicketStatus.OPEN, agent: str = "", reason: str = "", priority: str = "",
                 claimed_by=None, now: datetime | None = None) -> QuerySet[EscalationTicket]:
    """Tickets for the queue and the API. "open" includes claims whose lease lapsed (anyone may
    take them); "claimed" only live claims. Open work is ordered by priority then age."""
    now = now or timezone.now()
    qs = EscalationTicket.objects.select_related("agent", "version", "claimed_by", "resolved_by")
    if status == TicketStatus.OPEN:
        qs = qs.filter(claimable_q(now))
    elif status == TicketStatus.CLAIMED:
        qs = qs.filter(status=TicketStatus.CLAIMED, lease_expires_at__gt=now)
    elif status == TicketStatus.RESOLVED:
        qs = qs.filter(status=TicketStatus.RESOLVED)
    if agent:
        qs = qs.filter(agent__slug=agent)
    if reason:
        qs = qs.filter(reason=reason)
    if priority:
        qs = qs.filter(priority=priority)
    if claimed_by is not None:
        qs = qs.filter(claimed_by=claimed_by)
    if status == TicketStatus.RESOLVED:
        return qs.order_by("-resolved_at", "-pk")
    return qs.order_by("priority", "created_at", "pk")


def tickets_counts(*, now: datetime | None = None) -> dict:
    """Open (claimable) tickets per priority, live claims, and unresolved tickets past due."""
    now = now or timezone.now()
    open_q = claimable_q(now)
    aggregates = {p: Count("pk", filter=open_q & Q(priority=p)) for p in Priority.values}
    aggregates["claimed"] = Count("pk", filter=Q(status=TicketStatus.CLAIMED, lease_expires_at__gt=now))
    aggregates["breached"] = Count("pk", filter=Q(status__in=[TicketStatus.OPEN, TicketStatus.CLAIMED], due_at__lt=now))
    row = EscalationTicket.objects.exclude(status=TicketStatus.RESOLVED).aggregate(**aggregates)
    return {
        "by_priority": [(p, row[p]) for p in Priority.values],
        "open": sum(row[p] for p in Priority.values),
        "claimed": row["claimed"],
        "breached": row["breached"],
    }


def ticket_get(*, pk: int) -> EscalationTicket:
    ticket = (EscalationTicket.objects.select_related("agent", "version", "rollout", "claimed_by", "resolved_by")
              .filter(pk=pk).first())
    if ticket is None:
        raise NotFound(f"no escalation ticket #{pk}")
    return ticket


def ticket_agents() -> list[str]:
    """Agents that have tickets, for the queue's filter."""
    return list(Agent.objects.filter(tickets__isnull=False).distinct().order_by("slug").values_list("slug", flat=True))


def _pretty(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def context_timeline(context: dict) -> list[dict]:
    """The agent's work as steps a reviewer reads top to bottom: input, each attempt (tool,
    arguments, result or error, duration), partial output, confidence. Pure: context in, steps out."""
    context = context if isinstance(context, dict) else {}
    steps: list[dict] = []
    if context.get("input") not in (None, ""):
        steps.append({"kind": "input", "title": "Input", "body": _pretty(context["input"]), "css": ""})
    attempts = context.get("attempts") if isinstance(context.get("attempts"), list) else []
    for number, attempt in enumerate(attempts, start=1):
        attempt = attempt if isinstance(attempt, dict) else {"result": attempt}
        failed = attempt.get("error") not in (None, "")
        steps.append({
            "kind": "attempt",
            "number": number,
            "title": str(attempt.get("tool") or attempt.get("step") or "step"),
            "arguments": _pretty(attempt["arguments"]) if attempt.get("arguments") not in (None, "", {}) else "",
            "result": _pretty(attempt["result"]) if attempt.get("result") not in (None, "") else "",
            "error": _pretty(attempt["error"]) if failed else "",
            "duration_ms": attempt.get("duration_ms"),
            "css": "error" if failed else "ok",
        })
    if context.get("partial_output") not in (None, ""):
        steps.append({"kind": "partial_output", "title": "Partial output", "body": _pretty(context["partial_output"]),
                      "css": ""})
    if context.get("confidence") is not None:
        steps.append({"kind": "confidence", "title": "Confidence", "confidence": context["confidence"], "css": ""})
    known = {"input", "attempts", "partial_output", "confidence"}
    extra = {k: v for k, v in context.items() if k not in known}
    if extra:
        steps.append({"kind": "extra", "title": "Other context", "body": _pretty(extra), "css": ""})
    return steps


def tickets_held_by(*, user) -> QuerySet[EscalationTicket]:
    """Claims a person holds, lapsed leases included (until the sweep or someone else takes them)."""
    return (EscalationTicket.objects.select_related("agent", "version", "claimed_by")
            .filter(status=TicketStatus.CLAIMED, claimed_by=user).defer("context")
            .order_by("lease_expires_at", "pk"))


def tickets_resolved_by(*, user, limit: int = 20) -> list[EscalationTicket]:
    return list(EscalationTicket.objects.select_related("agent", "version")
                .filter(status=TicketStatus.RESOLVED, resolved_by=user).defer("context")
                .order_by("-resolved_at", "-pk")[:limit])


def ticket_history(*, ticket: EscalationTicket) -> list:
    return list(ticket.events.select_related("actor").order_by("at", "pk"))

