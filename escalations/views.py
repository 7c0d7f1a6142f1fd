"""Pages of the escalations app: the live queue, my tickets, and the ticket page with its
context timeline and the claim / renew / release / resolve actions."""
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from rolloutops import policy
from rolloutops.exceptions import DomainError, Invalid
from rolloutops.pages import error_text, htmx_partial, paginate, require_action
from telemetry.selectors import agent_labels

from . import claims, services
from .models import Priority, Reason, TicketStatus
from .selectors import (
    context_timeline,
    ticket_agents,
    ticket_get,
    ticket_history,
    tickets_counts,
    tickets_held_by,
    tickets_list,
    tickets_resolved_by,
)

FILTERS = ("agent", "reason", "priority")
# The resolve form's choice for a label the agent has never used (it then needs a confirmation).
OTHER_LABEL = "__other__"


def _filters(data) -> dict:
    filters = {key: (data.get(key) or "").strip() for key in FILTERS}
    if filters["reason"] not in Reason.values:
        filters["reason"] = ""
    if filters["priority"] not in Priority.values:
        filters["priority"] = ""
    return filters


def _mark_sla(tickets, now) -> list:
    rows = list(tickets)
    for t in rows:
        t.breached = claims.sla_breached(t, now)
        t.lapsed = t.status == TicketStatus.CLAIMED and not claims.lease_active(t, now)
    return rows


@require_GET
@require_action("escalation.read")
def queue(request):
    filters = _filters(request.GET)
    now = timezone.now()
    page = paginate(request, tickets_list(status=TicketStatus.OPEN, now=now, **filters).defer("context"), per_page=50)
    page.object_list = _mark_sla(page.object_list, now)
    context = {
        "page": page, "filters": filters, "counts": tickets_counts(now=now), "agents": ticket_agents(),
        "now": now, "filtered": any(filters.values()),
        "lease_minutes": settings.ROLLOUTOPS["CLAIM_LEASE_SECONDS"] // 60,
    }
    template = "escalations/queue.html#queue-table" if htmx_partial(request) else "escalations/queue.html"
    return render(request, template, context)


@require_GET
@require_action("escalation.read")
def mine(request):
    now = timezone.now()
    context = {
        "held": _mark_sla(tickets_held_by(user=request.user), now),
        "resolved": _mark_sla(tickets_resolved_by(user=request.user), now),
        "now": now,
    }
    template = "escalations/mine.html#mine-table" if htmx_partial(request) else "escalations/mine.html"
    return render(request, template, context)


@require_POST
@require_action("escalation.work")
def claim_next(request):
    filters = _filters(request.POST)
    ticket = services.ticket_claim_next(reviewer=request.user, agent=filters["agent"] or None,
                                        reason=filters["reason"] or None, priority=filters["priority"] or None)
    if ticket is None:
        messages.info(request, "Nothing to claim: the queue is empty" + (" for these filters." if any(filters.values()) else "."))
        query = urlencode({k: v for k, v in filters.items() if v})
        url = reverse("escalations:queue") + (f"?{query}" if query else "")
    else:
        until = timezone.localtime(ticket.lease_expires_at)
        messages.success(request, f"Ticket #{ticket.pk} is yours until {until:%H:%M} {until.tzname()}; "
                                  "the page keeps renewing it.")
        url = reverse("escalations:ticket", args=[ticket.pk])
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _renew_every(lease_seconds: int) -> int:
    # Renew well before the lease lapses, yet rarely: a third of the lease, at most each minute.
    return max(5, min(60, lease_seconds // 3))


def _ticket_context(request, ticket) -> dict:
    now = timezone.now()
    user = request.user
    holds = ticket.status == TicketStatus.CLAIMED and ticket.claimed_by_id == user.pk
    lease_seconds = settings.ROLLOUTOPS["CLAIM_LEASE_SECONDS"]
    return {
        "t": ticket,
        "now": now,
        "breached": claims.sla_breached(ticket, now),
        "lease_active": claims.lease_active(ticket, now),
        "holds": holds,
        "can_claim": policy.allows(user, "escalation.work") and not holds and claims.is_claimable(ticket, now),
        "can_renew": holds,
        "can_resolve": holds,
        "can_release": ticket.status == TicketStatus.CLAIMED and policy.allows(user, "escalation.release", ticket),
        "history": ticket_history(ticket=ticket),
        "renew_every": _renew_every(lease_seconds),
        "labels": agent_labels(agent_id=ticket.agent_id) if holds else [],
        "other_label": OTHER_LABEL,
        "form": {},
    }


@require_GET
@require_action("escalation.read")
def ticket_detail(request, pk: int):
    ticket = ticket_get(pk=pk)
    context = _ticket_context(request, ticket)
    if htmx_partial(request):
        fragment = "ticket-status" if request.GET.get("fragment") == "status" else "ticket-panel"
        return render(request, f"escalations/ticket.html#{fragment}", context)
    context["timeline"] = context_timeline(ticket.context)
    return render(request, "escalations/ticket.html", context)


def _act(request, pk: int, action, done: str):
    """Run one action; htmx gets the updated panel (morphed in, so what is typed in the other forms
    stays) with the outcome among the page's messages, a plain POST a redirect."""
    ticket = ticket_get(pk=pk)
    try:
        action(ticket)
        level, text = messages.SUCCESS, done
    except DomainError as refused:
        level, text = messages.ERROR, error_text(refused)
    if htmx_partial(request) and request.POST.get("fragment") == "status":
        # The page's own lease renewal: the status says how it went; no message to pile up.
        return render(request, "escalations/ticket.html#ticket-status", _ticket_context(request, ticket_get(pk=pk)))
    messages.add_message(request, level, text)
    if htmx_partial(request):
        context = _ticket_context(request, ticket_get(pk=pk))
        if level == messages.ERROR:
            context["form"] = request.POST  # a refused resolution comes back as it was filled in
        return render(request, "escalations/ticket.html#ticket-answer", context)
    return redirect("escalations:ticket", pk=pk)


@require_POST
@require_action("escalation.work")
def claim(request, pk: int):
    return _act(request, pk, lambda t: services.ticket_claim(reviewer=request.user, ticket=t),
                "You hold this ticket; the page renews the lease while it is open.")


@require_POST
@require_action("escalation.work")
def renew(request, pk: int):
    return _act(request, pk, lambda t: services.ticket_renew(reviewer=request.user, ticket=t), "Lease renewed.")


@require_POST
@require_action("escalation.release")
def release(request, pk: int):
    note = request.POST.get("note", "")[:500]
    return _act(request, pk, lambda t: services.ticket_release(actor=request.user, ticket=t, note=note),
                "Released: the ticket is back in the queue.")


@require_POST
@require_action("escalation.work")
def resolve(request, pk: int):
    """The decision is one of the agent's labels, or "other…" with a new label and its confirmation."""
    label, notes = request.POST.get("label", ""), request.POST.get("notes", "")
    new_label = label == OTHER_LABEL
    if new_label:
        label = request.POST.get("new_label", "")
    confirmed = new_label and request.POST.get("confirm_new_label") == "yes"

    def act(ticket):
        if new_label and not confirmed and label.strip():
            raise Invalid(f"“{label.strip()}” would be a new decision label: tick the confirmation to record it",
                          field="confirm_new_label")
        return services.ticket_resolve(reviewer=request.user, ticket=ticket, label=label, notes=notes,
                                       new_label=confirmed)

    return _act(request, pk, act, f"Resolved as “{label.strip()}”; recorded as the human decision for this request.")
