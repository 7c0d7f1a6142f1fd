"""HTTP API of the agents app (mounted under /api/v1/ by rolloutops.api)."""
from __future__ import annotations

from datetime import datetime

from ninja import Field, Router, Schema, Status

from rolloutops.api import require
from rolloutops.roles import Role

from . import selectors, services
from .models import Agent, AgentVersion, ChecklistItem, Evaluation
from .readiness import version_readiness

router = Router(tags=["agents"])

WRITE = {Role.OPERATOR}
READ = {Role.OPERATOR, Role.REVIEWER, Role.MANAGER}


class AgentIn(Schema):
    slug: str = Field(max_length=64)
    name: str = Field(max_length=200)
    owner_team: str = Field(max_length=100)
    description: str = ""


class AgentOut(Schema):
    slug: str
    name: str
    owner_team: str
    description: str
    created_at: datetime
    latest_version: str | None = None


class SlaIn(Schema):
    p95_latency_ms: int = Field(2000, gt=0, le=3_600_000)
    max_error_rate: float = Field(0.02, ge=0, le=1)


class VersionIn(Schema):
    version: str = Field(max_length=64)
    notes: str = ""
    sla: SlaIn = SlaIn()


class ResultIn(Schema):
    item: str
    status: str  # checked by the service, so the error names the index and the item
    evidence: str = ""


class EvaluationIn(Schema):
    results: list[ResultIn] = Field(min_length=1, max_length=500)
    notes: str = ""
    ttl_days: int | None = Field(None, ge=1, le=services.MAX_TTL_DAYS)


class ChecklistItemIn(Schema):
    dimension: str
    key: str = Field(max_length=80)
    title: str = Field(max_length=200)
    description: str = ""


class ChecklistItemOut(Schema):
    key: str
    dimension: str
    title: str
    description: str
    position: int
    active: bool


class ErrorOut(Schema):
    detail: str


def _version_out(version: AgentVersion, *, with_readiness: bool = True, full: bool = False) -> dict:
    data = {
        "version": version.version,
        "notes": version.notes,
        "sla": {"p95_latency_ms": version.sla_p95_latency_ms, "max_error_rate": version.sla_max_error_rate},
        "created_at": version.created_at,
    }
    if with_readiness:
        readiness = version_readiness(version=version)
        data["readiness"] = readiness.as_dict() if full else {"ready": readiness.ready, "failing": readiness.failing}
    return data


def _agent_out(agent: Agent, latest: str | None) -> dict:
    return {"slug": agent.slug, "name": agent.name, "owner_team": agent.owner_team,
            "description": agent.description, "created_at": agent.created_at, "latest_version": latest}


def _evaluation_out(evaluation: Evaluation) -> dict:
    return {
        "id": evaluation.pk,
        "version": evaluation.version.version,
        "evaluated_by": evaluation.evaluated_by.get_username() if evaluation.evaluated_by else None,
        "evaluated_at": evaluation.evaluated_at,
        "expires_at": evaluation.expires_at,
        "notes": evaluation.notes,
        "results": [{"item": r.item.key, "status": r.status, "evidence": r.evidence}
                    for r in evaluation.results.select_related("item").order_by("item__dimension", "item__position")],
    }


@router.post("/agents", response={201: AgentOut, 409: ErrorOut, 422: ErrorOut})
def agent_create(request, payload: AgentIn):
    principal = require(request, roles=WRITE)
    agent = services.agent_register(actor=principal.user, **payload.dict())
    return Status(201, _agent_out(agent, None))


@router.get("/agents", response=list[AgentOut])
def agent_index(request, q: str = "", team: str = ""):
    require(request, roles=READ)
    agents = Agent.objects.all()
    if q:
        agents = agents.filter(slug__icontains=q) | agents.filter(name__icontains=q)
    if team:
        agents = agents.filter(owner_team=team)
    latest = {}
    for agent_id, version in (AgentVersion.objects.filter(agent__in=agents).order_by("agent_id", "created_at", "id")
                              .values_list("agent_id", "version")):
        latest[agent_id] = version  # ascending, so the last one seen is the newest
    return [_agent_out(a, latest.get(a.pk)) for a in agents.order_by("slug")]


@router.get("/agents/{slug}", response={200: dict, 404: ErrorOut})
def agent_detail(request, slug: str):
    require(request, roles=READ)
    agent = selectors.agent_get(slug=slug)
    versions = selectors.agent_versions(agent=agent)
    rollout = selectors.open_rollout(agent=agent)
    if rollout is not None:
        rollout.pop("version_id")
    production = agent.production_version
    return {
        **_agent_out(agent, versions[0].version if versions else None),
        "in_production": {"handler": "agent" if production else "human",
                          "version": production.version if production else None, "since": agent.production_since},
        "lineage": selectors.production_lineage(agent=agent),
        "versions": [_version_out(v) for v in versions],
        "active_rollout": rollout,
    }


@router.post("/agents/{slug}/versions", response={201: dict, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut})
def version_create(request, slug: str, payload: VersionIn):
    principal = require(request, roles=WRITE)
    agent = selectors.agent_get(slug=slug)
    version = services.version_add(
        actor=principal.user, agent=agent, version=payload.version, notes=payload.notes,
        sla_p95_latency_ms=payload.sla.p95_latency_ms, sla_max_error_rate=payload.sla.max_error_rate,
    )
    return Status(201, {"agent": agent.slug, **_version_out(version)})


@router.get("/agents/{slug}/versions/{version}", response={200: dict, 404: ErrorOut})
def version_detail(request, slug: str, version: str):
    require(request, roles=READ)
    row = selectors.version_get(agent=selectors.agent_get(slug=slug), version=version)
    return {"agent": slug, **_version_out(row, full=True)}


@router.post("/agents/{slug}/versions/{version}/evaluations",
             response={201: dict, 404: ErrorOut, 422: dict})
def evaluation_create(request, slug: str, version: str, payload: EvaluationIn):
    principal = require(request, roles=WRITE)
    row = selectors.version_get(agent=selectors.agent_get(slug=slug), version=version)
    evaluation = services.evaluation_record(
        actor=principal.user, version=row, results=[r.dict() for r in payload.results], notes=payload.notes,
        ttl_days=payload.ttl_days,
    )
    return Status(201, {"evaluation": _evaluation_out(evaluation), "readiness": version_readiness(version=row).as_dict()})


@router.get("/agents/{slug}/versions/{version}/readiness", response={200: dict, 404: ErrorOut})
def readiness_detail(request, slug: str, version: str):
    require(request, roles=READ)
    row = selectors.version_get(agent=selectors.agent_get(slug=slug), version=version)
    return version_readiness(version=row).as_dict()


@router.get("/checklist", response=list[ChecklistItemOut])
def checklist_index(request):
    require(request, roles=READ)
    return list(ChecklistItem.objects.filter(active=True).order_by("dimension", "position", "key"))


@router.post("/checklist", response={201: ChecklistItemOut, 409: ErrorOut, 422: ErrorOut})
def checklist_create(request, payload: ChecklistItemIn):
    principal = require(request, roles=WRITE)
    return Status(201, services.checklist_item_add(actor=principal.user, **payload.dict()))
