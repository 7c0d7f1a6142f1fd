"""Rollouts of one agent version through a plan of stages, their history and promotion requests."""
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


class RolloutState(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ROLLED_BACK = "rolled_back", "Rolled back"
    COMPLETED = "completed", "Completed"
    # Completed, then production was reverted to the version before it by hand.
    REVERTED = "reverted", "Reverted"


class StageMode(models.TextChoices):
    OFF = "off", "Off (staging)"
    SHADOW = "shadow", "Shadow"
    LIVE = "live", "Live"


class TransitionAction(models.TextChoices):
    """What a StageTransition did; the actions a state allows are the table in stages.py. The
    column keeps no choices so that naming them needed no migration."""

    START = "start", "Start"
    PROMOTE = "promote", "Promote"
    PAUSE = "pause", "Pause"
    RESUME = "resume", "Resume"
    ROLLBACK = "rollback", "Roll back"
    COMPLETE = "complete", "Complete"
    REVERT = "revert", "Revert production"


def new_salt() -> str:
    return secrets.token_hex(8)


DEFAULT_ERROR_BUDGET = 0.01


class Rollout(models.Model):
    agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, related_name="rollouts")
    # The candidate: the version this rollout moves through its plan.
    version = models.ForeignKey("agents.AgentVersion", on_delete=models.PROTECT, related_name="rollouts")
    # Who keeps the traffic the candidate does not take, and takes it all back on a rollback:
    # the agent's incumbent when the rollout started (null: humans).
    incumbent_version = models.ForeignKey("agents.AgentVersion", null=True, blank=True, on_delete=models.PROTECT,
                                          related_name="+")
    # The probability that a healthy candidate is falsely rolled back over the whole plan
    # (docs/decisions.md, "The error budget").
    error_budget = models.FloatField(default=DEFAULT_ERROR_BUDGET)
    state = models.CharField(max_length=12, choices=RolloutState.choices, default=RolloutState.ACTIVE)
    stage_index = models.PositiveIntegerField(default=0)
    # Denormalized from the current stage so routing reads one row.
    stage_name = models.CharField(max_length=40, default="staging")
    mode = models.CharField(max_length=8, choices=StageMode.choices, default=StageMode.OFF)
    traffic_percent = models.FloatField(default=0)
    stage_entered_at = models.DateTimeField(default=timezone.now)
    salt = models.CharField(max_length=32, default=new_salt)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Set when the rollout ended in a rollback: why, in one line, for lists and the dashboard.
    end_reason = models.TextField(blank=True)
    # Bumped on every transition; the routing cache and compare-and-set updates key on it.
    revision = models.PositiveIntegerField(default=1)
    # Shadow segments already announced as systematic discrepancies (each is notified once).
    flagged_notified = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one rollout per agent that still holds (or may regain) traffic.
            models.UniqueConstraint(
                fields=["agent"], condition=models.Q(state__in=[RolloutState.ACTIVE, RolloutState.PAUSED]),
                name="rollout_one_open_per_agent",
            ),
            models.CheckConstraint(
                condition=models.Q(traffic_percent__gte=0) & models.Q(traffic_percent__lte=100),
                name="rollout_traffic_is_a_percentage",
            ),
            models.CheckConstraint(
                condition=models.Q(error_budget__gt=0) & models.Q(error_budget__lt=0.5),
                name="rollout_error_budget_is_a_probability",
            ),
        ]
        indexes = [models.Index(fields=["state", "-created_at"])]

    def __str__(self) -> str:
        return f"rollout #{self.pk} of {self.version}"


class RolloutStage(models.Model):
    """One step of a rollout's plan; editable until the rollout leaves staging."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="stages")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=40)
    mode = models.CharField(max_length=8, choices=StageMode.choices)
    traffic_percent = models.FloatField(default=0)
    min_duration_s = models.PositiveIntegerField(default=0)
    min_samples = models.PositiveIntegerField(default=0)
    agreement_bar = models.FloatField(null=True, blank=True)
    guardrails = models.JSONField(default=dict, blank=True)
    # Live stages: no agent event for this long pauses the rollout as inconclusive.
    inconclusive_after_s = models.PositiveIntegerField(null=True, blank=True)
    entered_at = models.DateTimeField(null=True, blank=True)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["rollout", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "position"], name="rolloutstage_unique_position"),
            models.UniqueConstraint(fields=["rollout", "name"], name="rolloutstage_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class StageTransition(models.Model):
    """Every change of stage or state, with who and why: the rollout's history."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="transitions")
    from_stage = models.CharField(max_length=40, blank=True)
    to_stage = models.CharField(max_length=40)
    from_state = models.CharField(max_length=12, blank=True)
    to_state = models.CharField(max_length=12)
    traffic_percent = models.FloatField(default=0)
    action = models.CharField(max_length=20)  # a TransitionAction
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    automatic = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    # Frozen at the moment of the decision: readiness, stage figures, guardrails, agreement.
    evidence = models.JSONField(default=dict, blank=True)
    promotion = models.ForeignKey("PromotionRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["rollout", "at", "id"]


class PromotionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    REFUSED = "refused", "Refused by a gate"
    CANCELLED = "cancelled", "Cancelled"


class PromotionRequest(models.Model):
    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="promotions")
    from_stage = models.CharField(max_length=40)
    to_stage = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=PromotionStatus.choices, default=PromotionStatus.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    unmet = models.JSONField(default=list, blank=True)
    evidence = models.JSONField(default=dict, blank=True)  # frozen when requested, and again when decided

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["rollout"], condition=models.Q(status=PromotionStatus.PENDING),
                name="promotion_one_pending_per_rollout",
            ),
        ]
        indexes = [models.Index(fields=["status", "-requested_at"])]

    def __str__(self) -> str:
        return f"promotion #{self.pk} {self.from_stage}→{self.to_stage}"


class GuardrailState(models.Model):
    """The guardrail watch's memory of one rollout (rollouts/decisions.py): each guardrail's
    sequential test carried across looks and stages, and the shadow segments' final verdicts.
    Written by compare-and-set on `version`, so two looks never count the same events twice."""

    rollout = models.OneToOneField(Rollout, on_delete=models.CASCADE, primary_key=True, related_name="guardrail_state")
    state = models.JSONField(default=dict)
    segments = models.JSONField(default=dict)  # stage -> {"decided_at", "flagged", "pairs"}
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
