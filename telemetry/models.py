"""Agent and human decision events reported by agent runtimes (SPEC 3, 6)."""
from django.db import models
from django.utils import timezone


class EventKind(models.TextChoices):
    AGENT = "agent", "Agent"
    HUMAN = "human", "Human"


class Outcome(models.TextChoices):
    OK = "ok", "OK"
    ERROR = "error", "Error"
    TIMEOUT = "timeout", "Timeout"
    ESCALATED = "escalated", "Escalated"


class Event(models.Model):
    """One decision about one request. Idempotent on (agent, request_key, kind)."""

    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey("agents.AgentVersion", null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    rollout = models.ForeignKey("rollouts.Rollout", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    stage = models.CharField(max_length=40, blank=True)  # the rollout's stage when it occurred
    request_key = models.CharField(max_length=200)
    kind = models.CharField(max_length=5, choices=EventKind.choices)
    label = models.CharField(max_length=200)
    segment = models.CharField(max_length=100, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.OK)
    input_hash = models.CharField(max_length=128, blank=True)
    trace = models.JSONField(null=True, blank=True)
    has_trace = models.BooleanField(default=False)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "request_key", "kind"], name="event_idempotency"),
        ]
        indexes = [
            models.Index(fields=["version", "kind"]),
            models.Index(fields=["rollout", "stage"]),
        ]
