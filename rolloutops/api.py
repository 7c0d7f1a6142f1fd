"""HTTP API of the core (mounted under /api/v1/ by console.api): the audit trail, filterable."""
from datetime import datetime

from ninja import Query, Router, Schema

from .auth import authorize
from .inputs import MAX_BIGINT
from .selectors import audit_entries

router = Router(tags=["audit"])


class AuditEntryOut(Schema):
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    object: str
    before: dict | list | None
    after: dict | list | None
    source_ip: str | None
    # Until the sealer links an entry into the chain (seconds after its commit) it has no
    # position and no hash: sealed false, seq null, hash and prev_hash "".
    sealed: bool
    seq: int | None
    hash: str
    prev_hash: str


class AuditPageOut(Schema):
    count: int
    results: list[AuditEntryOut]
    next_before_id: int | None


@router.get("/audit", response=AuditPageOut)
def audit_list(request, action: str = "", actor: str = "", object_type: str = "", object_id: str = "",
               since: str = Query("", description="a day, YYYY-MM-DD (inclusive)"),
               until: str = Query("", description="a day, YYYY-MM-DD (inclusive)"),
               before_id: int | None = Query(None, ge=1, le=MAX_BIGINT), limit: int = 100):
    authorize(request, "audit.read")
    limit = max(1, min(limit, 1000))
    qs = audit_entries(action=action, actor=actor, object_type=object_type, object_id=object_id, since=since, until=until)
    if before_id:
        qs = qs.filter(id__lt=before_id)
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "count": len(rows),
        "results": [
            {"id": e.pk, "at": e.at, "actor": e.actor_label, "action": e.action, "object_type": e.object_type,
             "object_id": e.object_id, "object": e.object_repr, "before": e.before, "after": e.after,
             "source_ip": e.source_ip, "sealed": e.sealed, "seq": e.seq, "hash": e.hash or "",
             "prev_hash": e.prev_hash}
            for e in rows
        ],
        "next_before_id": rows[-1].pk if more and rows else None,
    }
