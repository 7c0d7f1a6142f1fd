"""Agents, their versions, and the five-dimension readiness checklist with its evaluations."""
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone


class Agent(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    owner_team = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The incumbent: who handles the agent's traffic when no rollout is open. Null is humans
    # (until a first version completes); then the version whose rollout completed last, or the one
    # an operator reverted to. Changed only by agents.services.production_change.
    production_version = models.ForeignKey("AgentVersion", null=True, blank=True, on_delete=models.PROTECT,
                                           related_name="+")
    production_since = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def in_production_label(self) -> str:
        return self.production_version.version if self.production_version_id else "humans"


version_validator = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$", "letters, digits, . _ + - (e.g. 1.4.0)")


class AgentVersion(models.Model):
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=64, validators=[version_validator])
    notes = models.TextField(blank=True)
    sla_p95_latency_ms = models.PositiveIntegerField(default=2000)
    sla_max_error_rate = models.FloatField(default=0.02, validators=[MinValueValidator(0), MaxValueValidator(1)])
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["agent", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "version"], name="agentversion_unique_per_agent"),
            models.CheckConstraint(
                condition=models.Q(sla_max_error_rate__gte=0) & models.Q(sla_max_error_rate__lte=1),
                name="agentversion_error_rate_is_a_share",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent.slug}@{self.version}"


class ProductionChangeKind(models.TextChoices):
    COMPLETED = "completed", "Rollout completed"
    REVERTED = "reverted", "Reverted by hand"


class ProductionChange(models.Model):
    """One change of who is in production: the agent's version lineage (which version held
    production when, and why it left)."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="production_changes")
    from_version = models.ForeignKey(AgentVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_version = models.ForeignKey(AgentVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=ProductionChangeKind.choices)
    # The rollout that completed, or the completed rollout whose version a revert took out.
    rollout_id = models.BigIntegerField(null=True, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["agent", "-at", "-id"]
        indexes = [models.Index(fields=["agent", "-at"])]

    def __str__(self) -> str:
        def label(v):
            return v.version if v else "humans"

        return f"{self.agent.slug}: {label(self.from_version)} → {label(self.to_version)}"


class Dimension(models.TextChoices):
    RELIABILITY = "reliability", "Reliability"
    OBSERVABILITY = "observability", "Observability"
    FALLBACK = "fallback", "Fallback & escalation"
    SECURITY = "security", "Security"
    PERFORMANCE = "performance", "Performance"


class ChecklistItem(models.Model):
    """One thing that must hold. `key` is what evaluations name (e.g. `security.encryption`).

    An item added to a checklist in use applies to evaluations recorded after it. A version
    evaluated before the item existed is judged without it until `grace_until` (the item's creation
    plus CHECKLIST_GRACE_DAYS), so one new item does not at once make every ready version not
    ready and freeze every promotion; after that it must be evaluated (agents/readiness.py)."""

    key = models.SlugField(max_length=80, unique=True, allow_unicode=False)
    dimension = models.CharField(max_length=20, choices=Dimension.choices)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Null: no grace (the default checklist, or a grace of 0 days).
    grace_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dimension", "position", "key"]

    def __str__(self) -> str:
        return self.key


class Evaluation(models.Model):
    """One recording by one evaluator of some checklist items for a version."""

    version = models.ForeignKey(AgentVersion, on_delete=models.CASCADE, related_name="evaluations")
    evaluated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    evaluated_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-evaluated_at", "-id"]
        indexes = [models.Index(fields=["version", "-evaluated_at"])]

    def __str__(self) -> str:
        return f"evaluation #{self.pk} of {self.version}"


class ResultStatus(models.TextChoices):
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"
    NA = "na", "Not applicable"


class EvaluationResult(models.Model):
    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="results")
    item = models.ForeignKey(ChecklistItem, on_delete=models.PROTECT, related_name="results")
    status = models.CharField(max_length=4, choices=ResultStatus.choices)
    evidence = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "item"], name="evaluationresult_one_per_item"),
            models.CheckConstraint(condition=models.Q(status__in=ResultStatus.values), name="evaluationresult_status_valid"),
        ]
