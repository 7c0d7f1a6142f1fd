"""The audit trail: record an entry inside the caller's transaction, verify the hash chain."""
from __future__ import annotations

import contextvars
import hashlib
import json
from dataclasses import dataclass
from datetime import timezone as dt_timezone

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from .models import AuditEntry

GENESIS = "0" * 64


@dataclass(frozen=True)
class RequestContext:
    source_ip: str | None = None
    via: str | None = None  # "token <name>" when a machine or script acted


request_context: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "rolloutops_audit_request_context", default=RequestContext()
)


def _normalize(value):
    # Hash exactly what the JSON column will give back, whatever Python types came in.
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True))


def entry_digest(*, prev_hash: str, at, actor_id, actor_label, action, object_type, object_id,
                 object_repr, before, after, source_ip) -> str:
    payload = {
        "prev": prev_hash,
        "at": at.astimezone(dt_timezone.utc).isoformat(timespec="microseconds"),
        "actor_id": actor_id,
        "actor": actor_label,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "object_repr": object_repr,
        "before": before,
        "after": after,
        "source_ip": source_ip,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _lock_chain() -> None:
    # Appends must be serial or two entries would claim the same predecessor. SQLite runs
    # writers one at a time already (IMMEDIATE transactions); PostgreSQL takes an advisory
    # lock held until the surrounding transaction ends.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(7310244117)")


def audit_record(*, actor, action: str, obj=None, object_type: str = "", object_id="", object_repr: str = "",
                 before=None, after=None, source_ip: str | None = None) -> AuditEntry:
    """Append one entry. Call it inside the transaction of the change it records, so the
    change and its entry commit or vanish together."""
    ctx = request_context.get()
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
        object_repr = object_repr or str(obj)
    if actor is not None and getattr(actor, "is_authenticated", False):
        actor_id, label = actor.pk, actor.get_username()
    else:
        actor_id, label = None, "system"
    if ctx.via:
        label = f"{label} via {ctx.via}"
    source_ip = source_ip or ctx.source_ip
    before, after = _normalize(before), _normalize(after)
    object_repr = str(object_repr)[:300]
    with transaction.atomic():
        _lock_chain()
        prev = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS
        at = timezone.now()
        digest = entry_digest(prev_hash=prev, at=at, actor_id=actor_id, actor_label=label, action=action,
                              object_type=object_type, object_id=object_id, object_repr=object_repr,
                              before=before, after=after, source_ip=source_ip)
        return AuditEntry.objects.create(
            at=at, actor_id=actor_id, actor_label=label, action=action, object_type=object_type,
            object_id=str(object_id), object_repr=object_repr, before=before, after=after,
            source_ip=source_ip, prev_hash=prev, hash=digest,
        )


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_bad_id: int | None
    problem: str | None

    @property
    def intact(self) -> bool:
        return self.first_bad_id is None


def audit_verify(batch_size: int = 5000) -> ChainReport:
    """Walk the chain in id order; the first row whose content or link does not match is named."""
    prev = GENESIS
    checked = 0
    fields = ("id", "at", "actor_id", "actor_label", "action", "object_type", "object_id", "object_repr",
              "before", "after", "source_ip", "prev_hash", "hash")
    for row in AuditEntry.objects.order_by("id").values_list(*fields).iterator(chunk_size=batch_size):
        (pk, at, actor_id, label, action, otype, oid, orepr, before, after, ip, prev_hash, stored) = row
        if prev_hash != prev:
            return ChainReport(checked, pk, "its link to the previous entry is broken (an entry was removed or re-linked)")
        digest = entry_digest(prev_hash=prev_hash, at=at, actor_id=actor_id, actor_label=label, action=action,
                              object_type=otype, object_id=oid, object_repr=orepr, before=before, after=after,
                              source_ip=ip)
        if digest != stored:
            return ChainReport(checked, pk, "its content does not match its hash (the entry was altered)")
        prev = stored
        checked += 1
    return ChainReport(checked, None, None)
