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


class Arm(models.TextChoices):
    """Which side of a rollout's comparison an event is on (docs/architecture.md, "Events")."""

    CANDIDATE = "candidate", "Candidate"  # the rollout's candidate version decided
    CONTROL = "control", "Control"  # the incumbent decided: its version, or humans when humans are the incumbent
    LABEL = "label", "Label"  # a human decided a request an agent acted on: a pair's reference, not an outcome
    OTHER = "other", "Other"  # a version that is neither candidate nor incumbent


class Reference(models.TextChoices):
    """What a candidate's decision is compared with in a pair."""

    HUMAN = "human", "Humans"
    INCUMBENT = "incumbent", "Incumbent version"


class TrafficPeriod(models.Model):
    """Who handled an agent's traffic from `starts_at` until the agent's next period.

    Written by the rollouts app, through telemetry.services.traffic_period_record, in the
    transaction of every change of routing (a rollout starts, moves, pauses, resumes, ends; an
    incumbent changes). Ingestion reads it to attribute each event to the rollout, stage and arm
    that governed its request at `occurred_at`, without reading the rollouts app's tables.
    """

    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    rollout = models.ForeignKey("rollouts.Rollout", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=40, blank=True)
    mode = models.CharField(max_length=8, blank=True)  # off | shadow | live, "" with no open rollout
    active = models.BooleanField(default=False)  # the rollout is active (not paused)
    traffic_percent = models.FloatField(default=0)  # the candidate's share: 0 unless active and live
    salt = models.CharField(max_length=32, blank=True)
    candidate_version = models.ForeignKey("agents.AgentVersion", null=True, blank=True, on_delete=models.CASCADE,
                                          related_name="+")
    incumbent_version = models.ForeignKey("agents.AgentVersion", null=True, blank=True, on_delete=models.CASCADE,
                                          related_name="+")  # null: humans
    latency_limit_ms = models.FloatField(null=True, blank=True)  # the stage's p95 limit: `slow` is decided against it

    class Meta:
        ordering = ["agent", "starts_at", "id"]
        indexes = [models.Index(fields=["agent", "starts_at"])]


class Event(models.Model):
    """One decision about one request: idempotent on (agent, version, request_key) for an agent's
    decision and on (agent, request_key) for the human one (no version decided it)."""

    # No index of their own on agent, version and rollout: each leads an index below (event_request,
    # event_version_kind_recent, the rollout's), which serves the cascades and the foreign-key
    # checks, and each of the three cost every stored event one more index write.
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="+", db_index=False)
    # The version that decided (agent events); null for a human's decision.
    version = models.ForeignKey("agents.AgentVersion", null=True, blank=True, on_delete=models.CASCADE, related_name="events",
                                db_index=False)
    rollout = models.ForeignKey("rollouts.Rollout", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                db_index=False)
    stage = models.CharField(max_length=40, blank=True)  # the rollout's stage when it occurred
    arm = models.CharField(max_length=9, choices=Arm.choices, default=Arm.OTHER)
    # latency_ms above the stage's p95 limit (exact at any limit); null without a latency or a limit.
    slow = models.BooleanField(null=True, blank=True)
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
            models.UniqueConstraint(fields=["agent", "version", "request_key"], condition=models.Q(kind="agent"),
                                    name="event_agent_idempotency"),
            models.UniqueConstraint(fields=["agent", "request_key"], condition=models.Q(kind="human"),
                                    name="event_human_idempotency"),
        ]
        indexes = [
            # The readiness checks walk a version's most recent agent events (newest id first).
            models.Index(fields=["version", "kind", "-id"], name="event_version_kind_recent"),
            models.Index(fields=["rollout", "stage"]),
            # The fold finds a request's other halves (and the pair page both sides) by this.
            models.Index(fields=["agent", "request_key"], name="event_request"),
            # The incumbent version's halves of pairs: the fold asks whether an agent has any (and
            # looks them up) without stepping over its candidate's events (telemetry/fold.py).
            models.Index(fields=["agent", "request_key"], condition=models.Q(kind="agent", arm="control"),
                         name="event_incumbent_half"),
        ]


class UnfoldedEvent(models.Model):
    """The fold's work queue: one row per stored event not yet added to the rollups.

    Written in the ingestion transaction, deleted by the fold in the transaction that adds the
    event to the rollups, so each event is counted exactly once. A queue table rather than a
    column on Event: marking 5,000 wide, many-indexed event rows costs far more than deleting
    5,000 narrow rows, and events stay insert-only. Each row carries the event's columns the fold
    reads (FOLD_COLUMNS), so taking a batch off the queue reads nothing else: no lookup of 50,000
    events by id (a third of a batch's time), whichever partition they are in.
    """

    FOLD_COLUMNS = ("agent_id", "request_key", "kind", "arm", "stage", "occurred_at", "segment", "label", "outcome",
                    "latency_ms", "slow")

    # No constraints in the database: each check cost ingestion an index lookup per event at commit
    # (a fifth of a batch's time), and a key into the partitioned event table cannot be one
    # (docs/architecture.md, "Events"). Rows are written with their event in one statement and
    # deleted by the fold; the ORM still cascades a deleted event or rollout.
    event = models.OneToOneField(Event, on_delete=models.CASCADE, primary_key=True, related_name="+",
                                 db_constraint=False)
    # No index either: the queue holds a handful of rows between folds, read by rollout only for
    # `pending_events` (a scan of those rows), and each index cost every ingested event a write.
    rollout = models.ForeignKey("rollouts.Rollout", null=True, on_delete=models.CASCADE, related_name="+",
                                db_constraint=False, db_index=False)
    # Copies of the event's columns (Event's field definitions), written with it.
    agent_id = models.BigIntegerField(default=0)
    request_key = models.CharField(max_length=200, default="")
    kind = models.CharField(max_length=5, default="")
    arm = models.CharField(max_length=9, default="")
    stage = models.CharField(max_length=40, blank=True, default="")
    occurred_at = models.DateTimeField(null=True)
    segment = models.CharField(max_length=100, blank=True, default="")
    label = models.CharField(max_length=200, default="")
    outcome = models.CharField(max_length=10, default="")
    latency_ms = models.FloatField(null=True)
    slow = models.BooleanField(null=True)

    @classmethod
    def of(cls, event: Event) -> "UnfoldedEvent":
        """The queue row of a stored event (unsaved)."""
        return cls(event_id=event.pk, rollout_id=event.rollout_id,
                   **{name: getattr(event, name) for name in cls.FOLD_COLUMNS})


# --- rollups: what the fold task maintains and every dashboard and gate reads -------------
# Keys: rollout, stage (the rollout's stage when the event occurred), hour (occurred_at truncated
# to the hour, UTC) and arm. Events of no rollout, and of arm "other", are not rolled up.


class StageHour(models.Model):
    """Per rollout, stage, hour and arm: decisions and their outcomes.

    For the candidate and the control these are the decisions that acted on requests (outcomes);
    for labels, the human decisions on requests an agent acted on.
    """

    rollout = models.ForeignKey("rollouts.Rollout", on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=40)
    hour = models.DateTimeField()
    arm = models.CharField(max_length=9, choices=Arm.choices)
    decisions = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)  # outcome error or timeout
    escalations = models.BigIntegerField(default=0)
    timed = models.BigIntegerField(default=0)  # with a latency
    slow = models.BigIntegerField(default=0)  # latency above the stage's p95 limit
    first_event_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rollout", "stage", "hour", "arm"], name="stagehour_key")]


class LatencyHour(models.Model):
    """Per rollout, stage, hour and arm: latencies counted in statistics.LATENCY_BUCKETS_MS buckets (for charts)."""

    rollout = models.ForeignKey("rollouts.Rollout", on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=40)
    hour = models.DateTimeField()
    arm = models.CharField(max_length=9, choices=Arm.choices)
    bucket = models.PositiveSmallIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rollout", "stage", "hour", "arm", "bucket"], name="latencyhour_key")]


class _PairCounts(models.Model):
    """Completed pairs per rollout, stage, reference, segment and label pair: the candidate's
    decision against a human's or the incumbent version's on the same request (keyed by the
    candidate event's rollout and stage)."""

    rollout = models.ForeignKey("rollouts.Rollout", on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=40)
    reference = models.CharField(max_length=9, choices=Reference.choices)
    segment = models.CharField(max_length=100)
    agent_label = models.CharField(max_length=200)
    reference_label = models.CharField(max_length=200)
    pairs = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class PairHour(_PairCounts):
    """_PairCounts per hour (of the candidate event)."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rollout", "stage", "hour", "reference", "segment", "agent_label", "reference_label"],
                name="pairhour_key",
            )
        ]


class PairCell(_PairCounts):
    """PairHour summed over its hours. Kept by the fold in the statement that upserts PairHour, from
    the same grouped pairs, so the two always agree; the shadow figures read these few rows, not
    every hour's (telemetry.selectors._pair_groups)."""

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rollout", "stage", "reference", "segment", "agent_label", "reference_label"],
                                    name="paircell_key")
        ]


class AgreementHour(models.Model):
    """PairHour summed over segments and label pairs: completed pairs and those whose labels agree,
    per rollout, stage, hour and reference (the agreement-over-time chart). Kept by the fold with
    PairHour, as PairCell is."""

    rollout = models.ForeignKey("rollouts.Rollout", on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=40)
    hour = models.DateTimeField()
    reference = models.CharField(max_length=9, choices=Reference.choices)
    pairs = models.BigIntegerField(default=0)
    agreements = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rollout", "stage", "hour", "reference"], name="agreementhour_key")]


class DiscrepantPair(models.Model):
    """One completed pair whose labels differ: the dashboard's lists of discrepancies."""

    rollout = models.ForeignKey("rollouts.Rollout", on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=40)
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="+")
    request_key = models.CharField(max_length=200)
    reference = models.CharField(max_length=9, choices=Reference.choices)
    segment = models.CharField(max_length=100)
    agent_label = models.CharField(max_length=200)
    reference_label = models.CharField(max_length=200)
    occurred_at = models.DateTimeField()  # the candidate event's

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rollout", "reference", "request_key"], name="discrepantpair_key")]
        indexes = [models.Index(fields=["rollout", "reference", "-occurred_at"])]


class RolloutFold(models.Model):
    """When the fold last added events of a rollout to its rollups (the figures' computed_at)."""

    rollout = models.OneToOneField("rollouts.Rollout", on_delete=models.CASCADE, primary_key=True, related_name="+")
    computed_at = models.DateTimeField()
