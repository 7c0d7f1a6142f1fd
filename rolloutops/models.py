"""Cross-app records: API tokens for machines and scripts, the hash-chained audit trail, people's settings."""
from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # First characters of the token, shown in lists so people can tell tokens apart.
    prefix = models.CharField(max_length=16)
    # sha256 of the whole token: tokens are 256 random bits, so a fast hash is enough.
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)  # values of rolloutops.policy.Scope
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class AuditEntry(models.Model):
    """Append-only. A write inserts its entry unsealed (seq NULL) inside its own transaction; the
    sealer then links committed entries into one hash chain in `seq` order (docs/audit.md). On
    PostgreSQL triggers refuse UPDATE (except that one sealing), DELETE and TRUNCATE (0003)."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+",
        # The trail outlives the users it names: removing a person leaves their entries as written
        # (emptying the column would be an UPDATE, which the append-only trail refuses).
        db_constraint=False,
    )
    actor_label = models.CharField(max_length=200)  # "alice", "alice via token ci-runtime", "system"
    action = models.CharField(max_length=64)  # indexed below, for prefixes too
    object_type = models.CharField(max_length=64, blank=True)  # indexed with object_id below
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    # Written once, by the sealer; empty/NULL until then.
    seq = models.BigIntegerField(null=True, blank=True, unique=True)  # position in the chain, from 1
    prev_hash = models.CharField(max_length=64, blank=True, default="")
    hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    alg = models.CharField(max_length=40, blank=True, default="")  # "sha256" (before 0003) or "hmac-sha256:<key id>"
    sealed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        # One index per lookup: each is written twice a write, inserted then sealed (migration 0006).
        indexes = [
            models.Index(fields=["object_type", "object_id"]),
            # The audit log filters by action prefix (LIKE 'ticket.%') and equality: pattern ops serve both.
            models.Index(fields=["action"], name="audit_action", opclasses=["varchar_pattern_ops"]),
            # The sealer's work queue: only unsealed rows, so it stays tiny.
            models.Index(fields=["id"], condition=models.Q(seq__isnull=True), name="audit_unsealed"),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.object_repr}"

    @property
    def sealed(self) -> bool:
        return self.seq is not None


class AuditCheckpoint(models.Model):
    """A keyed statement of the chain's head at a moment: "N entries, the Nth is #id with hash h".
    The same record is written outside the database (log line, file, /metrics); the copy kept here
    lets `verify_audit` check itself without them. Append-only like the entries."""

    at = models.DateTimeField()
    seq = models.BigIntegerField()  # entries in the chain (the head's position)
    head_id = models.BigIntegerField(null=True)
    head_hash = models.CharField(max_length=64)
    key_id = models.CharField(max_length=32)
    mac = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"checkpoint {self.at:%Y-%m-%d %H:%M:%S} at entry {self.seq}"


class Profile(models.Model):
    """A person's own settings: the time zone every time is shown in (rolloutops/timezones.py)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="rolloutops_profile")
    # An IANA name ("Europe/Berlin"); empty until the person chooses, and pages meanwhile show the
    # server's zone (settings.TIME_ZONE) and propose the browser's.
    time_zone = models.CharField(max_length=64, blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.user} ({self.time_zone or 'no time zone chosen'})"
