"""The fallback readiness check measured from a version's escalation tickets, registered with the
readiness gate by EscalationsConfig.ready (agents/readiness.py)."""
from __future__ import annotations

from django.db.models import Count, Q

from agents.models import AgentVersion, Dimension
from agents.readiness import AutomaticCheck, automatic_check, share

from .models import EscalationTicket

FALLBACK_MIN_TICKETS = 10
FALLBACK_MIN_CONTEXT_SHARE = 0.99


def version_ticket_checks(version: AgentVersion) -> list[AutomaticCheck]:
    tickets = EscalationTicket.objects.filter(version=version).aggregate(
        total=Count("id"), with_context=Count("id", filter=Q(has_context=True))
    )
    return [
        automatic_check(key="fallback.escalation_context", title="Escalations that carry context",
                        dimension=Dimension.FALLBACK, measured=share(tickets["with_context"], tickets["total"]),
                        threshold=FALLBACK_MIN_CONTEXT_SHARE, comparison=">=", unit="share",
                        samples=tickets["total"], min_samples=FALLBACK_MIN_TICKETS),
    ]
