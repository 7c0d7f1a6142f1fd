"""Agent and human decision events reported by agent runtimes, and the rollups the fold keeps of them."""
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
            # The readiness checks walk a version's most recent agent events (newest id first).
            models.Index(fields=["version", "kind", "-id"], name="event_version_kind_recent"),
            models.Index(fields=["rollout", "stage"]),
        ]


class UnfoldedEvent(models.Model):
    """The fold's work queue: one row per stored event not yet added to the rollups.

    Written in the ingestion transaction, deleted by the fold in the transaction that adds the
    event to the rollups, so each event is counted exactly once. A queue table rather than a
    column on Event: marking 5,000 wide, many-indexed event rows costs far more than deleting
    5,000 narrow rows, and events stay insert-only.
    """

    event = models.OneToOneField(Event, on_delete=models.CASCADE, primary_key=True, related_name="+")
    rollout = models.ForeignKey("rollouts.Rollout", null=True, on_delete=models.CASCADE, related_name="+")


# --- rollups: what the fold task maintains and every dashboard and gate reads -------------
# Keys: rollout, stage (the rollout's stage when the event
# occurred) and hour (occurred_at truncated to the hour, UTC).


class StageHour(models.Model):
    """Per rollout, stage and hour: counts of agent and human events and their outcomes."""

    rollout = models.ForeignKey("rollouts.Rollout", on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=40)
    hour = models.DateTimeField()
    agent_events = models.BigIntegerField(default=0)
    agent_errors = models.BigIntegerField(default=0)  # outcome error or timeout
    agent_escalations = models.BigIntegerField(default=0)
    human_events = models.BigIntegerField(default=0)
    human_errors = models.BigIntegerField(default=0)
    first_event_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rollout", "stage", "hour"], name="stagehour_key")]


class LatencyHour(models.Model):
    """Per rollout, stage and hour: agent latencies counted in statistics.LATENCY_BUCKETS_MS buckets."""

    rollout = models.ForeignKey("rollouts.Rollout", on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=40)
    hour = models.DateTimeField()
    bucket = models.PositiveSmallIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rollout", "stage", "hour", "bucket"], name="latencyhour_key")]


class PairHour(models.Model):
    """Completed agent/human pairs per rollout, stage, hour, segment and label pair (the agent event's rollout, stage and hour)."""

    rollout = models.ForeignKey("rollouts.Rollout", on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=40)
    hour = models.DateTimeField()
    segment = models.CharField(max_length=100)
    agent_label = models.CharField(max_length=200)
    human_label = models.CharField(max_length=200)
    pairs = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rollout", "stage", "hour", "segment", "agent_label", "human_label"], name="pairhour_key"
            )
        ]


class DiscrepantPair(models.Model):
    """One completed pair whose labels differ: the dashboard's list of recent discrepancies."""

    rollout = models.ForeignKey("rollouts.Rollout", on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=40)
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="+")
    request_key = models.CharField(max_length=200)
    segment = models.CharField(max_length=100)
    agent_label = models.CharField(max_length=200)
    human_label = models.CharField(max_length=200)
    occurred_at = models.DateTimeField()  # the agent event's

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "request_key"], name="discrepantpair_key")]
        indexes = [models.Index(fields=["rollout", "-occurred_at"])]


class RolloutFold(models.Model):
    """When the fold last added events of a rollout to its rollups (the figures' computed_at)."""

    rollout = models.OneToOneField("rollouts.Rollout", on_delete=models.CASCADE, primary_key=True, related_name="+")
    computed_at = models.DateTimeField()
