"""Writes on escalation tickets: open (idempotent), claim as a lease (atomic), renew, release,
resolve (which records the human decision), and the two sweeps (lapsed leases, SLA breaches)."""
from __future__ import annotations

import functools
import json
from datetime import datetime
from datetime import timezone as dt_timezone

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, models, transaction
from django.urls import reverse
from django.utils import timezone

from agents.models import Agent, AgentVersion
from rolloutops import policy
from rolloutops.audit import audit_columns, audit_inserted, audit_record
from rolloutops.db import server_binding_cursor
from rolloutops.models import AuditEntry
from rolloutops.exceptions import Conflict, Forbidden, Invalid
from rolloutops.notifications import notify
from rollouts.models import Rollout, RolloutState
from rollouts.routing import route
from telemetry.selectors import agent_labels
from telemetry.services import human_decision_record

from .claims import claimable_q, claimable_queues_sql, context_is_complete, context_segment, lease_active, lease_duration, sla_duration
from .exceptions import ContextTooLarge
from .models import EscalationTicket, Priority, Reason, TicketEvent, TicketEventKind, TicketStatus

MAX_CONTEXT_BYTES = 256 * 1024
MAX_ATTEMPTS = 200
MAX_REQUEST_KEY = 200
MAX_LABEL = 200
MAX_NOTES = 10_000
SWEEP_BATCH = 500


def _when(value: datetime | None) -> str:
    return value.astimezone(dt_timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def _username(user) -> str | None:
    return user.get_username() if user is not None else None


def _reload(pk: int) -> EscalationTicket:
    return EscalationTicket.objects.select_related("agent", "version", "rollout", "claimed_by", "resolved_by").get(pk=pk)


def _taken(ticket: EscalationTicket) -> Conflict:
    holder = _username(ticket.claimed_by)
    return Conflict(
        f"ticket #{ticket.pk} is claimed by {holder} until {_when(ticket.lease_expires_at)}",
        claimed_by=holder, lease_expires_at=ticket.lease_expires_at.isoformat() if ticket.lease_expires_at else None,
    )


def _resolved(ticket: EscalationTicket) -> Conflict:
    return Conflict(
        f"ticket #{ticket.pk} is already resolved (by {_username(ticket.resolved_by)}, {_when(ticket.resolved_at)})",
        status=TicketStatus.RESOLVED,
    )


def _validate_open(*, request_key: str, reason: str, priority: str, context) -> None:
    if not request_key:
        raise Invalid("request_key is required", field="request_key")
    if len(request_key) > MAX_REQUEST_KEY:
        raise Invalid(f"request_key is longer than {MAX_REQUEST_KEY} characters", field="request_key")
    if reason not in Reason.values:
        raise Invalid(f"reason must be one of {', '.join(Reason.values)}", field="reason")
    if priority not in Priority.values:
        raise Invalid(f"priority must be one of {', '.join(Priority.values)}", field="priority")
    if not isinstance(context, dict):
        raise Invalid("context must be an object", field="context")
    size = len(json.dumps(context, cls=DjangoJSONEncoder, separators=(",", ":")).encode())
    if size > MAX_CONTEXT_BYTES:
        raise ContextTooLarge(f"context is {size} bytes; at most {MAX_CONTEXT_BYTES} (256 KiB) are kept",
                              field="context", limit_bytes=MAX_CONTEXT_BYTES)
    attempts = context.get("attempts", [])
    if attempts is not None and not isinstance(attempts, list):
        raise Invalid("context.attempts must be a list", field="context.attempts")
    if attempts and len(attempts) > MAX_ATTEMPTS:
        raise Invalid(f"context.attempts has {len(attempts)} items; at most {MAX_ATTEMPTS}", field="context.attempts")


def _resolve_agent(agent: str | Agent) -> Agent:
    if isinstance(agent, Agent):
        return agent
    found = Agent.objects.filter(slug=agent).first()
    if found is None:
        raise Invalid(f"no agent '{agent}'", field="agent")
    return found


def ticket_open(*, actor, agent: str | Agent, request_key: str, reason: str, priority: str,
                context: dict | None = None, version: str | None = None) -> tuple[EscalationTicket, bool]:
    """Open a ticket for (agent, request_key), or return the one already open for it.
    Returns (ticket, created). A runtime retrying after a timeout never opens a second ticket."""
    policy.check(actor, "escalation.open")
    request_key = (request_key or "").strip()
    context = {} if context is None else context
    _validate_open(request_key=request_key, reason=reason, priority=priority, context=context)
    agent_obj = _resolve_agent(agent)
    existing = EscalationTicket.objects.filter(agent=agent_obj, request_key=request_key).first()
    if existing is not None:
        return existing, False

    rollout = (Rollout.objects.filter(agent=agent_obj, state__in=[RolloutState.ACTIVE, RolloutState.PAUSED])
               .select_related("version").first())
    if version:
        version_obj = AgentVersion.objects.filter(agent=agent_obj, version=version).first()
        if version_obj is None:
            raise Invalid(f"agent '{agent_obj.slug}' has no version '{version}'", field="version")
    else:
        # The version routing gives this request; where people act, the only version that can have
        # tried it is the open rollout's candidate (in shadow or staging) — as telemetry attributes events.
        answer = route(agent_obj.slug, request_key)
        acting = answer.version if answer is not None and answer.handler == "agent" else None
        if acting is not None:
            version_obj = AgentVersion.objects.filter(agent=agent_obj, version=acting).first()
        else:
            version_obj = rollout.version if rollout else None

    now = timezone.now()
    try:
        # A savepoint: when a concurrent retry wins the unique (agent, request_key) race, only
        # this insert rolls back and we answer with the winner's ticket.
        with transaction.atomic():
            ticket = EscalationTicket.objects.create(
                agent=agent_obj, version=version_obj, rollout=rollout, request_key=request_key, reason=reason,
                priority=priority, status=TicketStatus.OPEN, context=context,
                has_context=context_is_complete(context), created_at=now, due_at=now + sla_duration(priority),
            )
            TicketEvent.objects.create(ticket=ticket, kind=TicketEventKind.OPENED, actor=actor, at=now,
                                       detail={"reason": reason, "priority": priority})
            audit_record(actor=actor, action="ticket.opened", obj=ticket, after={
                "agent": agent_obj.slug, "request_key": request_key, "reason": reason, "priority": priority,
                "version": version_obj.version if version_obj else None, "rollout": rollout.pk if rollout else None,
            })
    except IntegrityError:
        existing = EscalationTicket.objects.filter(agent=agent_obj, request_key=request_key).first()
        if existing is None:
            raise
        return existing, False
    return ticket, True


def _take(*, pk: int, reviewer, now: datetime, prev_status: str, prev_holder_id: int | None) -> bool:
    """The real guard: only a row still in the state we saw becomes ours."""
    changed = (EscalationTicket.objects
               .filter(claimable_q(now), pk=pk, status=prev_status, claimed_by_id=prev_holder_id)
               .update(status=TicketStatus.CLAIMED, claimed_by=reviewer, claimed_at=now,
                       lease_expires_at=now + lease_duration()))
    return changed == 1


def _record_claim(*, ticket: EscalationTicket, reviewer, now: datetime, prev_status: str, prev_holder) -> None:
    if prev_status == TicketStatus.CLAIMED:
        # The previous holder's lease lapsed before the sweep returned it to the queue.
        TicketEvent.objects.create(ticket=ticket, kind=TicketEventKind.LEASE_EXPIRED, actor=None, at=now,
                                   detail={"holder": _username(prev_holder)})
        audit_record(actor=None, action="ticket.lease_expired", obj=ticket,
                     before={"status": TicketStatus.CLAIMED, "claimed_by": _username(prev_holder)}, after={"status": TicketStatus.OPEN})
    TicketEvent.objects.create(ticket=ticket, kind=TicketEventKind.CLAIMED, actor=reviewer, at=now,
                               detail=_claimed_detail(ticket.lease_expires_at))
    _audit_claim(ticket=ticket, reviewer=reviewer)


def _claimed_detail(lease_expires_at: datetime) -> dict:
    return {"lease_expires_at": lease_expires_at.isoformat()}


def _claim_change(*, reviewer, lease: datetime) -> dict:
    """What a claim's audit entry records (before, after), wherever it is written."""
    return {"before": {"status": TicketStatus.OPEN},
            "after": {"status": TicketStatus.CLAIMED, "claimed_by": reviewer.get_username(), "lease_expires_at": lease}}


def _audit_claim(*, ticket: EscalationTicket, reviewer) -> None:
    audit_record(actor=reviewer, action="ticket.claimed", obj=ticket,
                 **_claim_change(reviewer=reviewer, lease=ticket.lease_expires_at))


def _next_candidate(queryset, now: datetime):
    """The first claimable ticket by priority then age: (pk, status, holder id) or None."""
    fields = ("pk", "priority", "created_at", "status", "claimed_by_id")
    order = ("priority", "created_at", "pk")
    queues = [queryset.filter(status=TicketStatus.OPEN),
              queryset.filter(status=TicketStatus.CLAIMED, lease_expires_at__lte=now)]
    picked = []
    for qs in queues:
        row = qs.order_by(*order).values_list(*fields).first()
        if row is not None:
            picked.append(row)
    if not picked:
        return None
    pk, _, _, status, holder_id = min(picked, key=lambda r: (r[1], r[2], r[0]))
    return pk, status, holder_id


def _claim_next_one_by_one(queryset, *, reviewer) -> EscalationTicket | None:
    """Pick, then take with a compare-and-set, then reload: for SQLite, whose writers already run
    one at a time (IMMEDIATE transactions)."""
    while True:
        now = timezone.now()
        with transaction.atomic():
            candidate = _next_candidate(queryset, now)
            if candidate is None:
                return None
            pk, prev_status, prev_holder_id = candidate
            if not _take(pk=pk, reviewer=reviewer, now=now, prev_status=prev_status, prev_holder_id=prev_holder_id):
                continue  # someone else got there first; pick again
            ticket = _reload(pk)
            prev_holder = get_user_model().objects.filter(pk=prev_holder_id).first() if prev_holder_id else None
            _record_claim(ticket=ticket, reviewer=reviewer, now=now, prev_status=prev_status, prev_holder=prev_holder)
            return ticket


_CONVERTERS: dict = {}


def _from_row(model, values) -> models.Model:
    """An instance of `model` from its concrete columns in order, converted as the ORM converts them."""
    fields = model._meta.concrete_fields
    converters = _CONVERTERS.get(model)
    if converters is None:
        converters = []
        for f in fields:
            col = f.get_col(model._meta.db_table)
            converters.append((col, connection.ops.get_db_converters(col) + f.get_db_converters(connection)))
        _CONVERTERS[model] = converters
    converted = []
    for value, (col, funcs) in zip(values, converters, strict=True):
        for func in funcs:
            value = func(value, col, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def _columns(model, alias: str) -> str:
    return ", ".join(f'{alias}."{f.column}"' for f in model._meta.concrete_fields)


_TICKET = EscalationTicket._meta.db_table
_EVENT = TicketEvent._meta.db_table
_AUDIT = AuditEntry._meta.db_table
_AUDIT_COLUMNS = ("at", "actor_id", "actor_label", "action", "object_type", "before", "after", "source_ip")
_AUDIT_VALUES = ("%s", "%s", "%s", "%s", "%s", "%s::jsonb", "%s::jsonb", "%s::inet")
# What a claim answers needs of the ticket's agent and version: the API shows their slug and
# version string, the page links by id. The instances the claim returns hold these fields and
# load any other on access (Django's deferred fields), instead of every column of both rows.
# (In the model's column order, as Model.from_db takes a subset of the columns.)
_AGENT_FIELDS = tuple(f.attname for f in Agent._meta.concrete_fields if f.attname in {"id", "slug", "name"})
_VERSION_FIELDS = tuple(f.attname for f in AgentVersion._meta.concrete_fields if f.attname in {"id", "agent_id", "version"})
# The ticket's columns, then what it was before the claim, then its agent's and its version's fields.
_CLAIM_RESULT = (f"{_columns(EscalationTicket, 'taken')}, taken.prev_status, taken.prev_holder_id, "
                 f"{', '.join(f'a.{name}' for name in _AGENT_FIELDS)}, "
                 f"{', '.join(f'v.{name}' for name in _VERSION_FIELDS)}, pick.status")


@functools.lru_cache(maxsize=64)
def _claim_sql(filter_columns: tuple[str, ...], open_only: bool) -> str:
    """The claim statement's text for these filters (see _claim_statement): built once per shape,
    as its text is the same for every call with them and only the values change."""
    narrowing = "".join(f" AND {column} = %s" for column in filter_columns)
    # The queues' conditions are the same text at any moment; only their bound values change.
    queues = [f"SELECT id, status, claimed_by_id, priority, created_at FROM {_TICKET} "
              f"WHERE {condition}{narrowing} ORDER BY priority, created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
              for condition, _ in claimable_queues_sql(timezone.now())]
    only_open = f" AND pick.status = '{TicketStatus.OPEN.value}'" if open_only else ""
    return f"""
        WITH open_queue AS ({queues[0]}), lapsed_queue AS ({queues[1]}),
        pick AS (SELECT * FROM (SELECT * FROM open_queue UNION ALL SELECT * FROM lapsed_queue) c
                 ORDER BY priority, created_at, id LIMIT 1),
        taken AS (UPDATE {_TICKET} t SET status = %s, claimed_by_id = %s, claimed_at = %s, lease_expires_at = %s
                  FROM pick WHERE t.id = pick.id{only_open}
                  RETURNING {_columns(EscalationTicket, 't')}, pick.status AS prev_status,
                            pick.claimed_by_id AS prev_holder_id),
        history AS (INSERT INTO {_EVENT} (ticket_id, kind, actor_id, at, detail)
                    SELECT id, %s, %s, %s, %s::jsonb FROM taken WHERE prev_status = %s),
        audit AS (INSERT INTO {_AUDIT} ({", ".join(_AUDIT_COLUMNS)}, object_id, object_repr, prev_hash, alg)
                  SELECT {", ".join(_AUDIT_VALUES)}, id::text, left('ticket #' || id || ' ' || request_key, 300), '', ''
                  FROM taken WHERE prev_status = %s)
        SELECT {_CLAIM_RESULT}
        FROM pick LEFT JOIN taken ON taken.id = pick.id
        LEFT JOIN {Agent._meta.db_table} a ON a.id = taken.agent_id
        LEFT JOIN {AgentVersion._meta.db_table} v ON v.id = taken.version_id"""  # noqa: S608 (names are ours)


def _claim_statement(filters: dict, *, reviewer, now: datetime, lease: datetime,
                     open_only: bool = False) -> tuple[str, list]:
    """One statement: pick the first ticket of each claimable queue (claims.claimable_queues_sql,
    narrowed by `filters`, column = value) by priority then age, locked FOR UPDATE SKIP LOCKED;
    take the first of the two (`open_only`: only if it is open); write its "claimed" history row
    when it was open (a lapsed claim's two rows are written afterwards, in order) and its audit
    entry (audit_columns' rules; the object's id and repr, str(ticket), from the row taken); return
    it with its agent's and version's fields, and the status of the ticket picked (no row: none
    claimable)."""
    params = []
    for _, queue_params in claimable_queues_sql(now):
        params += [*queue_params, *filters.values()]
    detail = json.dumps(_claimed_detail(lease))
    entry = audit_columns(actor=reviewer, action="ticket.claimed", object_type=EscalationTicket._meta.label_lower,
                          at=now, **_claim_change(reviewer=reviewer, lease=lease))
    entry["before"], entry["after"] = json.dumps(entry["before"]), json.dumps(entry["after"])
    params += [TicketStatus.CLAIMED, reviewer.pk, now, lease,
               TicketEventKind.CLAIMED, reviewer.pk, now, detail, TicketStatus.OPEN,
               *(entry[column] for column in _AUDIT_COLUMNS), TicketStatus.OPEN]
    return _claim_sql(tuple(filters), open_only), params


def _claim_next_one_statement(filters: dict, *, reviewer) -> EscalationTicket | None:
    """PostgreSQL: pick and take in one statement. Each queue (open; claimed with a lapsed lease)
    gives its first ticket by priority then age, locked FOR UPDATE SKIP LOCKED, so concurrent
    claimers pass each other's rows instead of waiting; the first of the two becomes ours, and the
    statement returns it with its agent and version, having written its history row and audit entry.
    The row lock is the guard: a ticket another transaction took and committed in the meantime fails
    the queue's condition when it is locked, and is passed over.

    The usual claim, an open ticket, is that statement alone: outside a caller's transaction it is
    a transaction of its own, committed as it returns, with no BEGIN and COMMIT round trips (the
    statement is atomic; its deferred foreign keys are checked as it ends). A lapsed claim first in
    line is left to a transaction that takes it and then writes its two history rows and audit
    entries in order (`_record_claim`)."""
    ticket, picked = _claim_once(filters, reviewer=reviewer, open_only=True)
    if ticket is not None or picked is None:  # taken, or nothing claimable
        return ticket
    with transaction.atomic():
        ticket, _ = _claim_once(filters, reviewer=reviewer, open_only=False)
        return ticket


def _claim_once(filters: dict, *, reviewer, open_only: bool) -> tuple[EscalationTicket | None, str | None]:
    """Run the claim statement: (the ticket taken or None, the status of the ticket picked or None)."""
    now = timezone.now()
    lease = now + lease_duration()
    # Prepared once a kept connection has run it a few times (rolloutops/db.py): planning this
    # statement cost about as much database time as running it.
    with server_binding_cursor() as cursor:
        cursor.execute(*_claim_statement(filters, reviewer=reviewer, now=now, lease=lease, open_only=open_only))
        row = cursor.fetchone()
    if row is None:
        return None, None
    n_ticket, n_agent = len(EscalationTicket._meta.concrete_fields), len(_AGENT_FIELDS)
    picked = row[-1]
    if row[0] is None:  # a lapsed claim was first, and open_only left it
        return None, picked
    ticket = _from_row(EscalationTicket, row[:n_ticket])
    prev_status, prev_holder_id = row[n_ticket], row[n_ticket + 1]
    rest = row[n_ticket + 2:-1]
    ticket.agent = Agent.from_db(connection.alias, _AGENT_FIELDS, rest[:n_agent])
    if ticket.version_id is not None:
        ticket.version = AgentVersion.from_db(connection.alias, _VERSION_FIELDS, rest[n_agent:])
    ticket.claimed_by = reviewer
    if prev_status == TicketStatus.OPEN:  # its history row and audit entry are written
        audit_inserted()
    else:
        prev_holder = get_user_model().objects.filter(pk=prev_holder_id).first() if prev_holder_id else None
        _record_claim(ticket=ticket, reviewer=reviewer, now=now, prev_status=prev_status, prev_holder=prev_holder)
    return ticket, picked


def ticket_claim_next(*, reviewer, agent: str | Agent | None = None, reason: str | None = None,
                      priority: str | None = None) -> EscalationTicket | None:
    """Claim the most urgent claimable ticket (priority, then age); None when the queue is empty.
    Exactly once under any number of concurrent claimers (tests/escalations/test_concurrency.py)."""
    policy.check(reviewer, "escalation.work")
    filters = {}
    if agent:
        agent_id = agent.pk if isinstance(agent, Agent) else Agent.objects.filter(slug=agent).values_list("pk", flat=True).first()
        if agent_id is None:
            return None
        filters["agent_id"] = agent_id
    if reason:
        filters["reason"] = reason
    if priority:
        filters["priority"] = priority
    if connection.vendor == "postgresql":
        return _claim_next_one_statement(filters, reviewer=reviewer)
    return _claim_next_one_by_one(EscalationTicket.objects.filter(**filters), reviewer=reviewer)


def ticket_claim(*, reviewer, ticket: EscalationTicket) -> EscalationTicket:
    """Claim this ticket. Conflict (409) naming the holder when someone else has it."""
    policy.check(reviewer, "escalation.work")
    now = timezone.now()
    with transaction.atomic():
        current = _reload(ticket.pk)
        if current.status == TicketStatus.RESOLVED:
            raise _resolved(current)
        if lease_active(current, now):
            if current.claimed_by_id == reviewer.pk:
                return ticket_renew(reviewer=reviewer, ticket=current)
            raise _taken(current)
        prev_status, prev_holder = current.status, current.claimed_by
        if not _take(pk=current.pk, reviewer=reviewer, now=now, prev_status=prev_status,
                     prev_holder_id=current.claimed_by_id):
            current = _reload(ticket.pk)
            raise _resolved(current) if current.status == TicketStatus.RESOLVED else _taken(current)
        current = _reload(ticket.pk)
        _record_claim(ticket=current, reviewer=reviewer, now=now, prev_status=prev_status, prev_holder=prev_holder)
        return current


def ticket_renew(*, reviewer, ticket: EscalationTicket) -> EscalationTicket:
    """Extend the claimant's lease. Not audited: the ticket page renews every minute; the claim is."""
    policy.check(reviewer, "escalation.work")
    now = timezone.now()
    changed = (EscalationTicket.objects.filter(pk=ticket.pk, status=TicketStatus.CLAIMED, claimed_by=reviewer)
               .update(lease_expires_at=now + lease_duration()))
    current = _reload(ticket.pk)
    if not changed:
        if current.status == TicketStatus.RESOLVED:
            raise _resolved(current)
        if current.status == TicketStatus.CLAIMED:
            raise _taken(current)
        raise Conflict(f"ticket #{current.pk} is not claimed (the lease may have lapsed); claim it again",
                       status=current.status)
    return current


def ticket_release(*, actor, ticket: EscalationTicket, note: str = "") -> EscalationTicket:
    """Put a claimed ticket back in the queue: its claimant, or a manager for anyone's claim."""
    now = timezone.now()
    with transaction.atomic():
        current = _reload(ticket.pk)
        if current.status == TicketStatus.RESOLVED:
            raise _resolved(current)
        if current.status != TicketStatus.CLAIMED:
            raise Conflict(f"ticket #{current.pk} is not claimed", status=current.status)
        holder = current.claimed_by
        by_manager = current.claimed_by_id != actor.pk
        policy.check(actor, "escalation.release", current)
        changed = (EscalationTicket.objects
                   .filter(pk=current.pk, status=TicketStatus.CLAIMED, claimed_by_id=current.claimed_by_id,
                           claimed_at=current.claimed_at)
                   .update(status=TicketStatus.OPEN, claimed_by=None, claimed_at=None, lease_expires_at=None))
        if not changed:
            raise Conflict(f"ticket #{current.pk} changed meanwhile; reload it")
        _record_release(current, actor=actor, holder=_username(holder), by_manager=by_manager, note=note[:500], at=now)
        return _reload(current.pk)


def _record_release(ticket, *, actor, holder: str | None, by_manager: bool, note: str, at: datetime) -> None:
    """A released claim's history row and audit entry (the ticket is back in the queue)."""
    TicketEvent.objects.create(ticket=ticket, kind=TicketEventKind.RELEASED, actor=actor, at=at,
                               detail={"holder": holder, "by_manager": by_manager, "note": note})
    audit_record(actor=actor, action="ticket.released", obj=ticket,
                 before={"status": TicketStatus.CLAIMED, "claimed_by": holder},
                 after={"status": TicketStatus.OPEN, **({"note": note} if note else {})})


def resolution_label(*, agent: Agent, label: str, new_label: bool = False) -> str:
    """The decision as the agent spells it. A human label pairs with the agent's decision on the
    same request, and a label the agent never gives ("Approved - looks fine" beside "approve")
    counts as a disagreement in the statistics that gate promotions: so the label is one the agent
    uses (in any case), or a new one the person confirmed as new."""
    known = agent_labels(agent_id=agent.pk)
    for name in known:
        if name.casefold() == label.casefold():
            return name
    if new_label:
        return label
    offered = ", ".join(known[:20]) + ("…" if len(known) > 20 else "") if known else "none reported yet"
    raise Invalid(f"“{label}” is not a decision {agent.slug} makes ({offered}): choose one of its labels, or "
                  "confirm that this is a new label", field="label", known=known)


def ticket_resolve(*, reviewer, ticket: EscalationTicket, label: str, notes: str = "",
                   new_label: bool = False) -> EscalationTicket:
    """Only the claimant resolves. The decision becomes the human event of the request, so the
    shadow statistics pair it with the agent's decision; both commit together or not at all. The
    label is one of the agent's (resolution_label), unless `new_label` confirms a new one."""
    policy.check(reviewer, "escalation.work")
    label = (label or "").strip()
    notes = (notes or "").strip()
    if not label:
        raise Invalid("label (the human decision) is required", field="label")
    if len(label) > MAX_LABEL:
        raise Invalid(f"label is longer than {MAX_LABEL} characters", field="label")
    label = resolution_label(agent=ticket.agent, label=label, new_label=new_label)
    if len(notes) > MAX_NOTES:
        raise Invalid(f"notes are longer than {MAX_NOTES} characters", field="notes")
    now = timezone.now()
    with transaction.atomic():
        changed = (EscalationTicket.objects.filter(pk=ticket.pk, status=TicketStatus.CLAIMED, claimed_by=reviewer)
                   .update(status=TicketStatus.RESOLVED, resolved_by=reviewer, resolved_at=now,
                           resolution_label=label, resolution_notes=notes, lease_expires_at=None))
        current = _reload(ticket.pk)
        if not changed:
            if current.status == TicketStatus.RESOLVED:
                raise _resolved(current)
            if current.status == TicketStatus.OPEN:
                raise Conflict(f"ticket #{current.pk} is not claimed; claim it before resolving", status=TicketStatus.OPEN)
            raise Forbidden(f"only {_username(current.claimed_by)}, who holds the claim, may resolve this ticket",
                            claimed_by=_username(current.claimed_by))
        recorded = human_decision_record(
            agent=current.agent, request_key=current.request_key, label=label, occurred_at=now,
            segment=context_segment(current.context), version=current.version,
        )
        TicketEvent.objects.create(ticket=current, kind=TicketEventKind.RESOLVED, actor=reviewer, at=now,
                                   detail={"label": label, "human_event_recorded": bool(recorded)})
        audit_record(actor=reviewer, action="ticket.resolved", obj=current,
                     before={"status": TicketStatus.CLAIMED, "claimed_by": reviewer.get_username()},
                     after={"status": TicketStatus.RESOLVED, "label": label, "notes": notes[:500],
                            "human_event_recorded": bool(recorded)})
        return current


def tickets_release_claims_of(user) -> int:
    """A person removed from the product gives back every claim they hold, in the transaction that
    removes them: each ticket returns to the queue with a "released" history row and an audit entry
    naming the former holder (their claimant column would otherwise be emptied on a claimed ticket,
    which the table refuses). Returns how many were given back."""
    name = _username(user)
    now = timezone.now()
    with transaction.atomic():
        live = list(EscalationTicket.objects.select_for_update().filter(claimed_by=user, status=TicketStatus.CLAIMED)
                    .order_by("pk"))
        EscalationTicket.objects.filter(pk__in=[ticket.pk for ticket in live]).update(
            status=TicketStatus.OPEN, claimed_by=None, claimed_at=None, lease_expires_at=None)
        for ticket in live:
            _record_release(ticket, actor=None, holder=name, by_manager=False, note=f"{name} was removed", at=now)
    return len(live)


def tickets_sweep_expired_leases(*, now: datetime | None = None, batch: int = SWEEP_BATCH) -> int:
    """Return every claim whose lease lapsed to the queue, one compare-and-set each; count them."""
    now = now or timezone.now()
    returned = 0
    rows = list(EscalationTicket.objects.filter(status=TicketStatus.CLAIMED, lease_expires_at__lte=now)
                .order_by("lease_expires_at").values_list("pk", "claimed_by_id", "claimed_at")[:batch])
    for pk, holder_id, claimed_at in rows:
        with transaction.atomic():
            changed = (EscalationTicket.objects
                       .filter(pk=pk, status=TicketStatus.CLAIMED, claimed_by_id=holder_id, claimed_at=claimed_at,
                               lease_expires_at__lte=now)
                       .update(status=TicketStatus.OPEN, claimed_by=None, claimed_at=None, lease_expires_at=None))
            if not changed:
                continue  # renewed, released or resolved meanwhile
            ticket = _reload(pk)
            holder = get_user_model().objects.filter(pk=holder_id).first()
            TicketEvent.objects.create(ticket=ticket, kind=TicketEventKind.LEASE_EXPIRED, actor=None, at=now,
                                       detail={"holder": _username(holder)})
            audit_record(actor=None, action="ticket.lease_expired", obj=ticket,
                         before={"status": TicketStatus.CLAIMED, "claimed_by": _username(holder)}, after={"status": TicketStatus.OPEN})
            returned += 1
    return returned


def tickets_notify_sla_breaches(*, now: datetime | None = None, batch: int = SWEEP_BATCH) -> int:
    """Announce each unresolved ticket past its due time exactly once; count the announcements."""
    now = now or timezone.now()
    announced = 0
    pks = list(EscalationTicket.objects
               .filter(status__in=[TicketStatus.OPEN, TicketStatus.CLAIMED], due_at__lt=now,
                       sla_breach_notified_at__isnull=True)
               .order_by("due_at").values_list("pk", flat=True)[:batch])
    for pk in pks:
        with transaction.atomic():
            changed = (EscalationTicket.objects
                       .filter(pk=pk, sla_breach_notified_at__isnull=True,
                               status__in=[TicketStatus.OPEN, TicketStatus.CLAIMED])
                       .update(sla_breach_notified_at=now))
            if not changed:
                continue
            ticket = _reload(pk)
            overdue_min = int((now - ticket.due_at).total_seconds() // 60)
            TicketEvent.objects.create(ticket=ticket, kind=TicketEventKind.SLA_BREACHED, actor=None, at=now,
                                       detail={"due_at": ticket.due_at.isoformat()})
            notify(
                kind="ticket.sla_breached",
                summary=f"Escalation #{ticket.pk} ({ticket.agent.slug}, {ticket.priority}) is past its SLA "
                        f"by {overdue_min} min and still {ticket.status}",
                payload={
                    "ticket": ticket.pk, "agent": ticket.agent.slug, "request_key": ticket.request_key,
                    "priority": ticket.priority, "reason": ticket.reason, "status": ticket.status,
                    "claimed_by": _username(ticket.claimed_by), "due_at": ticket.due_at.isoformat(),
                    "url": reverse("escalations:ticket", args=[ticket.pk]),
                },
                severity="warning",
            )
            announced += 1
    return announced
