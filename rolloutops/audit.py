"""The audit trail (docs/audit.md): record an entry inside the caller's transaction, seal committed
entries into one keyed hash chain, verify the chain against keyed checkpoints of its head.

Recording takes no lock: an entry is inserted unsealed with the change it records, so audited
writes never queue behind one another. The sealer links committed entries into the chain in a
total order (`seq`), in short transactions of its own, serialized among sealers only."""
from __future__ import annotations

import contextvars
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from .audit_keys import current_key, known_keys, mac, mac_matches
from .models import AuditCheckpoint, AuditEntry
from .throttle import ProcessWindow

log = logging.getLogger("rolloutops.audit")

GENESIS = "0" * 64
ALG_SHA256 = "sha256"  # entries chained before migration 0003: plain SHA-256, no key
ALG_HMAC = "hmac-sha256"  # stored as "hmac-sha256:<key id>"
SEAL_TASK = "rolloutops.seal_audit"
SEAL_BATCH = 1000
_SEAL_LOCK = 7310244117  # pg advisory lock id: taken by sealers only, never by a recording write


@dataclass(frozen=True)
class RequestContext:
    source_ip: str | None = None
    via: str | None = None  # "token <name>" when a machine or script acted


request_context: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "rolloutops_audit_request_context", default=RequestContext()
)


def _normalize(value):
    # Store exactly what the JSON column will give back, whatever Python types came in.
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True))


def _content(*, at, actor_id, actor_label, action, object_type, object_id, object_repr, before, after,
             source_ip) -> dict:
    return {
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


def _canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def entry_digest(*, prev_hash: str, at, actor_id, actor_label, action, object_type, object_id,
                 object_repr, before, after, source_ip) -> str:
    """Algorithm "sha256" (entries before migration 0003): anyone can recompute it."""
    payload = _content(at=at, actor_id=actor_id, actor_label=actor_label, action=action, object_type=object_type,
                       object_id=object_id, object_repr=object_repr, before=before, after=after, source_ip=source_ip)
    payload["prev"] = prev_hash
    return hashlib.sha256(_canonical(payload)).hexdigest()


def _keyed_message(*, seq: int, entry_id: int, prev_hash: str, content: dict) -> bytes:
    payload = _content(**content)
    payload.update({"v": 2, "seq": seq, "id": entry_id, "prev": prev_hash})
    return _canonical(payload)


def keyed_digest(key: bytes, *, seq: int, entry_id: int, prev_hash: str, **content) -> str:
    """Algorithm "hmac-sha256": also binds the entry's id and chain position, and needs the key."""
    return mac(key, _keyed_message(seq=seq, entry_id=entry_id, prev_hash=prev_hash, content=content))


# --- recording ---------------------------------------------------------------------------------

def audit_record(*, actor, action: str, obj=None, object_type: str = "", object_id="", object_repr: str = "",
                 before=None, after=None, source_ip: str | None = None) -> AuditEntry:
    """Append one entry. Call it inside the transaction of the change it records, so the
    change and its entry commit or vanish together. The entry is sealed into the chain after
    commit (seconds later); until then it shows as "sealing" and carries no hash."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
        object_repr = object_repr or str(obj)
    entry = AuditEntry.objects.create(**audit_columns(
        actor=actor, action=action, object_type=object_type, object_id=object_id, object_repr=object_repr,
        before=before, after=after, source_ip=source_ip))
    audit_inserted()
    return entry


def audit_columns(*, actor, action: str, object_type: str = "", object_id="", object_repr: str = "",
                  before=None, after=None, source_ip: str | None = None, at: datetime | None = None) -> dict:
    """An unsealed entry's columns, by the rules every entry follows (the actor's label with the
    token it acted through, the request's address, JSON as the column gives it back). For a
    statement that inserts its entry itself (escalations.services._claim_statement); it must then
    call audit_inserted() in the same transaction."""
    ctx = request_context.get()
    if actor is not None and getattr(actor, "is_authenticated", False):
        actor_id, label = actor.pk, actor.get_username()
    else:
        actor_id, label = None, "system"
    if ctx.via:
        label = f"{label} via {ctx.via}"
    return {"at": at or timezone.now(), "actor_id": actor_id, "actor_label": label, "action": action,
            "object_type": object_type, "object_id": str(object_id), "object_repr": str(object_repr)[:300],
            "before": _normalize(before), "after": _normalize(after), "source_ip": source_ip or ctx.source_ip}


def audit_inserted() -> None:
    """Called inside the transaction that inserted an entry: ask for sealing once it commits."""
    # robust: the change has committed by then; a broker outage must not turn it into an error.
    transaction.on_commit(request_seal, robust=True)


_seal_window = ProcessWindow()  # this process asks for sealing at most once per SEAL_DELAY_SECONDS


def request_seal() -> None:
    """Ask a worker to seal, at most once per SEAL_DELAY_SECONDS per process, and no network call
    in between: the run asked for is delayed by more than that window, so it starts after every
    commit that this process skipped asking for, and sees their entries. Beat is the safety net
    (a lost message, a worker whose clock runs ahead)."""
    delay = settings.AUDIT_SEAL_DELAY_SECONDS
    if not _seal_window.open(delay):
        return
    from .celery import app

    try:
        app.send_task(SEAL_TASK, countdown=delay * 1.5, retry=False)
    except Exception as exc:  # noqa: BLE001 (broker down: the next write or beat asks again)
        _seal_window.reset()
        log.warning("could not queue audit sealing; beat will seal", extra={"error": f"{type(exc).__name__}: {exc}"})


# --- sealing -----------------------------------------------------------------------------------

_CONTENT_FIELDS = ("id", "at", "actor_id", "actor_label", "action", "object_type", "object_id", "object_repr",
                   "before", "after", "source_ip")


def _row_content(row: tuple) -> dict:
    _, at, actor_id, label, action, otype, oid, orepr, before, after, ip = row
    return {"at": at, "actor_id": actor_id, "actor_label": label, "action": action, "object_type": otype,
            "object_id": oid, "object_repr": orepr, "before": before, "after": after, "source_ip": ip}


def _lock_sealer() -> None:
    # Sealers append to one chain, so they go one at a time. SQLite already runs writers one at
    # a time (IMMEDIATE transactions). Recording writes never take this lock.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SEAL_LOCK])


def chain_head() -> tuple[int, int | None, str]:
    """(entries in the chain, id of the last one, its hash)."""
    head = AuditEntry.objects.filter(seq__isnull=False).order_by("-seq").values_list("seq", "id", "hash").first()
    return head if head else (0, None, GENESIS)


def audit_seal(*, batch: int = SEAL_BATCH) -> int:
    """Link every committed unsealed entry into the chain, lowest id first, `batch` entries a
    transaction. An entry that commits late (lower id, later commit) simply gets a later
    position: the chain's order is the order of sealing. Returns how many were sealed."""
    kid, key = current_key()
    alg = f"{ALG_HMAC}:{kid}"
    table = AuditEntry._meta.db_table
    sealed = 0
    while True:
        with transaction.atomic():
            _lock_sealer()
            seq, _, prev = chain_head()
            rows = list(AuditEntry.objects.filter(seq__isnull=True).order_by("id").values_list(*_CONTENT_FIELDS)[:batch])
            if not rows:
                return sealed
            now = timezone.now()
            params = []
            for row in rows:
                seq += 1
                digest = keyed_digest(key, seq=seq, entry_id=row[0], prev_hash=prev, **_row_content(row))
                params.append((seq, prev, digest, alg, now, row[0]))
                prev = digest
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {table} SET seq = %s, prev_hash = %s, hash = %s, alg = %s, sealed_at = %s "  # noqa: S608
                    "WHERE id = %s AND seq IS NULL", params)
        sealed += len(rows)
        if len(rows) < batch:
            return sealed


# --- checkpoints -------------------------------------------------------------------------------

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """A keyed statement: at `at`, the chain had `seq` entries, the last being #head_id with
    hash head_hash. Only the key's holder can make one; anyone holding the key can check it."""

    at: datetime
    seq: int
    head_id: int | None
    head_hash: str
    key_id: str
    mac: str
    source: str = "database"

    @staticmethod
    def message(*, at: datetime, seq: int, head_id: int | None, head_hash: str) -> bytes:
        stamp = at.astimezone(dt_timezone.utc).isoformat(timespec="microseconds")
        return f"rolloutops-audit-checkpoint/v{CHECKPOINT_VERSION}|{seq}|{head_id or ''}|{head_hash}|{stamp}".encode()

    def record(self) -> dict:
        """The JSON form written to logs and files (and read back by verify_audit)."""
        return {"event": "audit.checkpoint", "checkpoint_version": CHECKPOINT_VERSION,
                "at": self.at.astimezone(dt_timezone.utc).isoformat(timespec="microseconds"),
                "seq": self.seq, "head_id": self.head_id, "head_hash": self.head_hash,
                "key_id": self.key_id, "mac": self.mac}

    @classmethod
    def from_record(cls, data: dict, *, source: str) -> Checkpoint:
        return cls(at=datetime.fromisoformat(data["at"]), seq=int(data["seq"]),
                   head_id=int(data["head_id"]) if data.get("head_id") not in (None, "") else None,
                   head_hash=str(data["head_hash"]), key_id=str(data["key_id"]), mac=str(data["mac"]), source=source)

    @classmethod
    def from_row(cls, row: AuditCheckpoint) -> Checkpoint:
        return cls(at=row.at, seq=row.seq, head_id=row.head_id, head_hash=row.head_hash, key_id=row.key_id,
                   mac=row.mac, source="database")

    def describe(self) -> str:
        return f"the checkpoint of {self.at.astimezone(dt_timezone.utc):%Y-%m-%d %H:%M:%S} UTC ({self.source})"


def checkpoint_make() -> Checkpoint:
    """Seal, then state the head under the key, and keep a copy in the database."""
    audit_seal()
    kid, key = current_key()
    with transaction.atomic():
        _lock_sealer()  # the head cannot move while it is stated
        seq, head_id, head_hash = chain_head()
        at = timezone.now()
        signature = mac(key, Checkpoint.message(at=at, seq=seq, head_id=head_id, head_hash=head_hash))
        AuditCheckpoint.objects.create(at=at, seq=seq, head_id=head_id, head_hash=head_hash, key_id=kid, mac=signature)
    return Checkpoint(at=at, seq=seq, head_id=head_id, head_hash=head_hash, key_id=kid, mac=signature)


# --- verification ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    message: str
    entry_id: int | None = None


@dataclass
class AuditReport:
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    checkpoints_checked: int = 0
    unsealed: int = 0
    newest_checkpoint: Checkpoint | None = None

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def first_bad_id(self) -> int | None:
        return next((p.entry_id for p in self.problems if p.entry_id is not None), None)

    @property
    def problem(self) -> str | None:
        return self.problems[0].message if self.problems else None


ChainReport = AuditReport  # the name callers used before checkpoints existed


def _verify_chain(report: AuditReport, keys: dict[str, bytes], batch_size: int) -> None:
    """Walk the sealed entries by position; stop at the first that does not hold."""
    prev, expected, keyed_seen = GENESIS, 1, False
    fields = (*_CONTENT_FIELDS, "seq", "prev_hash", "hash", "alg")
    rows = AuditEntry.objects.filter(seq__isnull=False).order_by("seq").values_list(*fields)
    for row in rows.iterator(chunk_size=batch_size):
        pk, seq, prev_hash, stored, alg = row[0], row[-4], row[-3], row[-2], row[-1]
        content = _row_content(row[:len(_CONTENT_FIELDS)])
        if seq != expected:
            report.problems.append(Problem(
                f"entry #{pk} is at position {seq} but {expected} was expected: "
                f"{seq - expected} entr{'y was' if seq - expected == 1 else 'ies were'} removed before it", pk))
            return
        if prev_hash != prev:
            report.problems.append(Problem(
                f"entry #{pk}: its link to the previous entry is broken (an entry was removed or re-linked)", pk))
            return
        if alg == ALG_SHA256:
            if keyed_seen:
                report.problems.append(Problem(
                    f"entry #{pk} uses the unkeyed algorithm after keyed entries: the chain was recomputed", pk))
                return
            digest = entry_digest(prev_hash=prev_hash, **content)
            ok = digest == stored
        elif alg.startswith(ALG_HMAC + ":"):
            keyed_seen = True
            key = keys.get(alg.split(":", 1)[1])
            if key is None:
                report.problems.append(Problem(
                    f"entry #{pk} was sealed with key {alg.split(':', 1)[1]}, which this verifier does not have "
                    "(AUDIT_CHECKPOINT_KEY / AUDIT_RETIRED_KEYS)", pk))
                return
            ok = mac_matches(key, _keyed_message(seq=seq, entry_id=pk, prev_hash=prev_hash, content=content), stored)
        else:
            report.problems.append(Problem(f"entry #{pk} names an unknown algorithm {alg!r}", pk))
            return
        if not ok:
            report.problems.append(Problem(
                f"entry #{pk}: its content does not match its hash (the entry was altered)", pk))
            return
        prev = stored
        expected += 1
        report.checked += 1


def _verify_checkpoints(report: AuditReport, checkpoints, keys: dict[str, bytes]) -> None:
    length = chain_head()[0]
    seen = set()
    for cp in sorted(checkpoints, key=lambda c: (c.seq, c.at)):
        if (cp.seq, cp.head_hash, cp.mac) in seen:
            continue
        seen.add((cp.seq, cp.head_hash, cp.mac))
        report.checkpoints_checked += 1
        key = keys.get(cp.key_id)
        if key is None:
            report.problems.append(Problem(
                f"{cp.describe()} was made with key {cp.key_id}, which this verifier does not have"))
            continue
        message = Checkpoint.message(at=cp.at, seq=cp.seq, head_id=cp.head_id, head_hash=cp.head_hash)
        if not mac_matches(key, message, cp.mac):
            report.problems.append(Problem(f"{cp.describe()} does not carry a valid MAC: it was forged or altered"))
            continue
        if report.newest_checkpoint is None or cp.at > report.newest_checkpoint.at:
            report.newest_checkpoint = cp
        if cp.seq == 0:
            continue
        if cp.seq > length:
            report.problems.append(Problem(
                f"the chain has {length} entries but {cp.describe()} vouched for {cp.seq}: the newest "
                f"{cp.seq - length} entr{'y was' if cp.seq - length == 1 else 'ies were'} removed "
                "(or the table was emptied)"))
            continue
        row = AuditEntry.objects.filter(seq=cp.seq).values_list("id", "hash").first()
        if row is None:
            continue  # a gap in positions, reported by the chain walk
        if row != (cp.head_id, cp.head_hash):
            report.problems.append(Problem(
                f"entry #{row[0]} at position {cp.seq} is not the one {cp.describe()} vouched for "
                f"(#{cp.head_id}): the chain was rewritten and recomputed up to there", row[0]))


GUARD_TRIGGERS = {
    "rolloutops_auditentry": ("rolloutops_audit_append_only", "rolloutops_audit_no_truncate"),
    "rolloutops_auditcheckpoint": ("rolloutops_checkpoint_append_only", "rolloutops_checkpoint_no_truncate"),
}


def _verify_guard(report: AuditReport) -> None:
    """On PostgreSQL, the triggers must be there and enabled: a table owner can switch them off."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table, names in GUARD_TRIGGERS.items():
            cursor.execute("SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                           [table])
            state = dict(cursor.fetchall())
            for name in names:
                if name not in state:
                    report.problems.append(Problem(f"the trigger {name} on {table} is missing: the table is not append-only"))
                elif state[name] == "D":
                    report.problems.append(Problem(f"the trigger {name} on {table} is disabled: the table is not append-only"))


def audit_verify(*, checkpoints=(), include_stored_checkpoints: bool = True, batch_size: int = 5000) -> AuditReport:
    """Verify the sealed chain (positions, links, keyed hashes), then every checkpoint given and
    stored: each must carry a valid MAC and match the entry at its position, so removing the
    newest entries, emptying the table, or rewriting and recomputing the chain is named."""
    keys = known_keys()
    report = AuditReport()
    _verify_chain(report, keys, batch_size)
    all_checkpoints = list(checkpoints)
    if include_stored_checkpoints:
        all_checkpoints += [Checkpoint.from_row(row) for row in AuditCheckpoint.objects.all()]
    _verify_checkpoints(report, all_checkpoints, keys)
    _verify_guard(report)
    report.unsealed = AuditEntry.objects.filter(seq__isnull=True).count()
    return report
