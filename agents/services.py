"""Writes of the agents app: register agents, add versions, record evaluations, extend the checklist."""
from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from rolloutops import policy
from rolloutops.audit import audit_record
from rolloutops.exceptions import Conflict, Invalid

from .models import (
    Agent, AgentVersion, ChecklistItem, Dimension, Evaluation, EvaluationResult, ProductionChange,
    ProductionChangeKind, ResultStatus,
)

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
ITEM_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9_]+$")
MAX_TTL_DAYS = 3650
# An hour: any larger latency SLA is a typo (and past what the column holds).
MAX_P95_LATENCY_MS = 3_600_000


def _required(value: str, field: str, max_length: int) -> str:
    value = (value or "").strip()
    if not value:
        raise Invalid(f"{field} is required", field=field)
    if len(value) > max_length:
        raise Invalid(f"{field} is longer than {max_length} characters", field=field)
    return value


def agent_register(*, actor, slug: str, name: str, owner_team: str, description: str = "") -> Agent:
    policy.check(actor, "agent.register")
    slug = (slug or "").strip()
    if not SLUG_RE.match(slug):
        raise Invalid("slug must be lowercase letters, digits and dashes (at most 64), e.g. claims-triage",
                      field="slug")
    name = _required(name, "name", 200)
    owner_team = _required(owner_team, "owner_team", 100)
    try:
        with transaction.atomic():
            agent = Agent.objects.create(slug=slug, name=name, owner_team=owner_team,
                                         description=description or "", created_by=actor)
            audit_record(actor=actor, action="agent.registered", obj=agent,
                         after={"slug": slug, "name": name, "owner_team": owner_team})
    except IntegrityError:
        raise Conflict(f"an agent with slug {slug!r} already exists", field="slug") from None
    return agent


def version_add(*, actor, agent: Agent, version: str, notes: str = "", sla_p95_latency_ms: int = 2000,
                sla_max_error_rate: float = 0.02) -> AgentVersion:
    policy.check(actor, "version.add")
    version = (version or "").strip()
    if not VERSION_RE.match(version):
        raise Invalid("version must be letters, digits and . _ + - (at most 64), e.g. 1.4.0", field="version")
    if (not isinstance(sla_p95_latency_ms, int) or isinstance(sla_p95_latency_ms, bool)
            or not 0 < sla_p95_latency_ms <= MAX_P95_LATENCY_MS):
        raise Invalid(f"sla.p95_latency_ms must be a whole number of milliseconds from 1 to {MAX_P95_LATENCY_MS:,}",
                      field="sla.p95_latency_ms")
    if not 0 <= sla_max_error_rate <= 1:
        raise Invalid("sla.max_error_rate must be a share between 0 and 1", field="sla.max_error_rate")
    try:
        with transaction.atomic():
            row = AgentVersion.objects.create(
                agent=agent, version=version, notes=notes or "", sla_p95_latency_ms=sla_p95_latency_ms,
                sla_max_error_rate=float(sla_max_error_rate), created_by=actor,
            )
            audit_record(actor=actor, action="version.added", obj=row, after={
                "agent": agent.slug, "version": version,
                "sla": {"p95_latency_ms": sla_p95_latency_ms, "max_error_rate": float(sla_max_error_rate)},
            })
    except IntegrityError:
        raise Conflict(f"{agent.slug} already has a version {version!r}", field="version") from None
    return row


def evaluation_record(*, actor, version: AgentVersion, results: list[dict], notes: str = "",
                      ttl_days: int | None = None) -> Evaluation:
    """Record one evaluation. Everything is validated before anything is stored; each problem
    names the result's index and item."""
    policy.check(actor, "evaluation.record")
    if ttl_days is None:
        ttl_days = settings.ROLLOUTOPS["EVALUATION_TTL_DAYS"]
    if not isinstance(ttl_days, int) or not 1 <= ttl_days <= MAX_TTL_DAYS:
        raise Invalid(f"ttl_days must be between 1 and {MAX_TTL_DAYS}", field="ttl_days")
    if not results:
        raise Invalid("results must name at least one checklist item", field="results")
    for index, result in enumerate(results):
        if not isinstance(result, dict):
            raise Invalid(f"results[{index}]: each result is an object with item, status and evidence", index=index)
    keys = [str(result.get("item", "")) for result in results]
    items = {i.key: i for i in ChecklistItem.objects.filter(key__in=keys, active=True)}
    seen: set[str] = set()
    rows: list[tuple[ChecklistItem, str, str]] = []
    for index, (key, result) in enumerate(zip(keys, results)):
        where = {"index": index, "item": key}
        if key not in items:
            raise Invalid(f"results[{index}]: unknown checklist item {key!r}", **where)
        if key in seen:
            raise Invalid(f"results[{index}]: item {key!r} appears twice", **where)
        seen.add(key)
        status = result.get("status")
        if status not in ResultStatus.values:
            raise Invalid(f"results[{index}] ({key}): status must be pass, fail or na, got {status!r}", **where)
        evidence = result.get("evidence") or ""
        if not isinstance(evidence, str):
            raise Invalid(f"results[{index}] ({key}): evidence must be text or a link", **where)
        rows.append((items[key], status, evidence.strip()))

    now = timezone.now()
    with transaction.atomic():
        evaluation = Evaluation.objects.create(
            version=version, evaluated_by=actor, evaluated_at=now, expires_at=now + timedelta(days=ttl_days),
            notes=notes or "",
        )
        EvaluationResult.objects.bulk_create(
            [EvaluationResult(evaluation=evaluation, item=item, status=status, evidence=evidence)
             for item, status, evidence in rows]
        )
        audit_record(actor=actor, action="evaluation.recorded", obj=evaluation, after={
            "version": str(version), "expires_at": evaluation.expires_at, "notes": evaluation.notes,
            "results": [{"item": item.key, "status": status, "evidence": evidence} for item, status, evidence in rows],
        })
    return evaluation


def checklist_item_add(*, actor, dimension: str, key: str, title: str, description: str = "") -> ChecklistItem:
    """Add an item to the checklist. It applies to evaluations recorded from now on; versions
    evaluated before it keep their verdict without it for CHECKLIST_GRACE_DAYS (ChecklistItem)."""
    policy.check(actor, "checklist.add")
    if dimension not in Dimension.values:
        raise Invalid(f"dimension must be one of {', '.join(Dimension.values)}", field="dimension")
    key = (key or "").strip()
    if not ITEM_KEY_RE.match(key) or len(key) > 80:
        raise Invalid("key must look like <dimension>.<name> in lowercase, e.g. security.encryption", field="key")
    title = _required(title, "title", 200)
    now = timezone.now()
    grace_days = settings.ROLLOUTOPS["CHECKLIST_GRACE_DAYS"]
    grace_until = now + timedelta(days=grace_days) if grace_days > 0 else None
    try:
        with transaction.atomic():
            last = ChecklistItem.objects.filter(dimension=dimension).aggregate(m=Max("position"))["m"]
            item = ChecklistItem.objects.create(
                dimension=dimension, key=key, title=title, description=description or "",
                position=(last or 0) + 10, created_by=actor, created_at=now, grace_until=grace_until,
            )
            audit_record(actor=actor, action="checklist.item_added", obj=item,
                         after={"dimension": dimension, "key": key, "title": title, "grace_until": grace_until})
    except IntegrityError:
        raise Conflict(f"a checklist item {key!r} already exists", field="key") from None
    return item


def production_change(*, actor, agent: Agent, to_version: AgentVersion | None, kind: str, reason: str,
                      rollout_id: int | None = None, at=None) -> ProductionChange:
    """Make `to_version` (None: humans) the agent's incumbent and keep the lineage. Called inside
    the transaction of the rollout transition that causes it (completion, revert), which holds the
    rollout's lock; the agent row is locked too, so two changes never interleave."""
    policy.check(actor, "production.revert" if kind == ProductionChangeKind.REVERTED else "rollout.complete")
    at = at or timezone.now()
    locked = Agent.objects.select_for_update(of=("self",)).select_related("production_version").get(pk=agent.pk)
    change = ProductionChange.objects.create(
        agent=locked, from_version=locked.production_version, to_version=to_version, kind=kind,
        rollout_id=rollout_id, actor=actor if actor else None, reason=reason, at=at,
    )
    Agent.objects.filter(pk=locked.pk).update(production_version=to_version, production_since=at)
    audit_record(actor=actor, action=f"agent.production_{kind}", obj=locked,
                 before={"in_production": locked.in_production_label},
                 after={"in_production": to_version.version if to_version else "humans", "reason": reason,
                        "rollout": rollout_id})
    agent.production_version, agent.production_since = to_version, at
    return change


def production_previous(*, agent: Agent) -> ProductionChange | None:
    """The change that put today's incumbent in production (a revert goes back to its from_version)."""
    return (ProductionChange.objects.filter(agent=agent).select_related("from_version", "to_version")
            .order_by("-at", "-id").first())
