"""Escalation tickets: what the agent could not finish, with everything it tried, for a human."""
from django.conf import settings
from django.db import models
from django.utils import timezone


class Reason(models.TextChoices):
    LOW_CONFIDENCE = "low_confidence", "Low confidence"
    TOOL_FAILURE = "tool_failure", "Tool failure"
    POLICY = "policy", "Policy"
    TIMEOUT = "timeout", "Timeout"
    OTHER = "other", "Other"


class Priority(models.TextChoices):
    P1 = "P1", "P1"
    P2 = "P2", "P2"
    P3 = "P3", "P3"
    P4 = "P4", "P4"


class TicketStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLAIMED = "claimed", "Claimed"
    RESOLVED = "resolved", "Resolved"


class EscalationTicket(models.Model):
    # No index of its own on agent nor claimed_by: each is the first column of one below
    # (ticket_one_per_request, ticket_by_claimant), and every index is one more write per claim
    # (bench/claims.py, bench/README.md "Escalation claims").
    agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, related_name="tickets", db_index=False)
    version = models.ForeignKey("agents.AgentVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="tickets")
    rollout = models.ForeignKey("rollouts.Rollout", null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    request_key = models.CharField(max_length=200)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    priority = models.CharField(max_length=2, choices=Priority.choices)
    status = models.CharField(max_length=10, choices=TicketStatus.choices, default=TicketStatus.OPEN)
    context = models.JSONField(default=dict)
    has_context = models.BooleanField(default=False)  # input and at least one attempt were sent
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    claimed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", db_index=False)
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_label = models.CharField(max_length=200, blank=True)
    resolution_notes = models.TextField(blank=True)
    sla_breach_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["priority", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "request_key"], name="ticket_one_per_request"),
            models.CheckConstraint(
                condition=~models.Q(status=TicketStatus.CLAIMED) | models.Q(claimed_by__isnull=False, lease_expires_at__isnull=False),
                name="ticket_claimed_has_claimant_and_lease",
            ),
        ]
        indexes = [
            # The queue: open tickets by priority then age.
            models.Index(fields=["priority", "created_at"], condition=models.Q(status=TicketStatus.OPEN), name="ticket_open_queue"),
            models.Index(fields=["lease_expires_at"], condition=models.Q(status=TicketStatus.CLAIMED),
                         name="ticket_claimed_leases"),
            # The SLA sweep: unresolved tickets not yet announced as breached.
            models.Index(
                fields=["due_at"],
                condition=models.Q(status__in=[TicketStatus.OPEN, TicketStatus.CLAIMED], sla_breach_notified_at__isnull=True),
                name="ticket_sla_unnotified",
            ),
            models.Index(fields=["claimed_by", "status"], name="ticket_by_claimant"),
        ]

    def __str__(self) -> str:
        return f"ticket #{self.pk} {self.request_key}"


class TicketEventKind(models.TextChoices):
    OPENED = "opened", "Opened"
    CLAIMED = "claimed", "Claimed"
    RELEASED = "released", "Released"
    LEASE_EXPIRED = "lease_expired", "Lease expired"
    RESOLVED = "resolved", "Resolved"
    SLA_BREACHED = "sla_breached", "SLA breached"


class TicketEvent(models.Model):
    """One change in a ticket's life: who claimed, released, let the lease lapse, resolved."""

    # Indexed by ticketevent_by_ticket, which leads with it (migration 0004).
    ticket = models.ForeignKey(EscalationTicket, on_delete=models.CASCADE, related_name="events", db_index=False)
    kind = models.CharField(max_length=16, choices=TicketEventKind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["ticket", "at"], name="ticketevent_by_ticket")]

    def __str__(self) -> str:
        return f"{self.kind} of ticket #{self.ticket_id}"
