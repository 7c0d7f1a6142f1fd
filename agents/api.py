"""HTTP API of the agents app (mounted under /api/v1/ by console.api): agents, versions, readiness
evaluations and the checklist. Output is shaped here, one `<entity>_out` per schema."""
from __future__ import annotations

from datetime import datetime

from ninja import Field, Router, Schema, Status

from rolloutops.auth import authorize
from rolloutops.schemas import ErrorOut

from . import selectors, services
from .models import Agent, AgentVersion, Evaluation, ResultStatus
from .readiness import Readiness, version_readiness

router = Router(tags=["agents"])


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
    p95_latency_ms: int = Field(2000, gt=0, le=services.MAX_P95_LATENCY_MS)
    max_error_rate: float = Field(0.02, ge=0, le=1)


class SlaOut(Schema):
    p95_latency_ms: int
    max_error_rate: float


class VersionIn(Schema):
    version: str = Field(max_length=64)
    notes: str = ""
    sla: SlaIn = SlaIn()


class ResultIn(Schema):
    item: str
    status: str = Field(description=f"one of {', '.join(ResultStatus.values)}; checked by the service, so the "
                        "error names the index and the item")
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
    created_at: datetime
    grace_until: datetime | None = Field(
        None, description="until then, versions last evaluated before the item existed are judged without it")


# Readiness, as agents.readiness.Readiness.as_dict() gives it (the same JSON frozen as evidence).


class ItemVerdictOut(Schema):
    key: str
    title: str
    status: str
    ok: bool
    reason: str
    evidence: str
    evaluation: int | None
    evaluated_by: str | None
    evaluated_at: str | None
    expires_at: str | None
    expiring_soon: bool
    grace_until: str | None = None


class GraceOut(Schema):
    key: str
    grace_until: str | None


class AutomaticCheckOut(Schema):
    key: str
    title: str
    measured: float | None
    threshold: float
    comparison: str
    unit: str
    samples: int
    min_samples: int
    verdict: str
    detail: str


class DimensionOut(Schema):
    status: str
    failing: list[str]
    items: list[ItemVerdictOut]
    automatic: list[AutomaticCheckOut]


class ReadinessOut(Schema):
    ready: bool
    dimensions: dict[str, DimensionOut]
    failing: list[str]
    # New checklist items not evaluated for this version yet that block from their grace_until on.
    in_grace: list[GraceOut] = []
    computed_at: str | None


class ReadinessSummaryOut(Schema):
    ready: bool
    failing: list[str]


class VersionOut(Schema):
    version: str
    notes: str
    sla: SlaOut
    created_at: datetime
    readiness: ReadinessSummaryOut


class VersionCreatedOut(VersionOut):
    agent: str


class VersionDetailOut(Schema):
    agent: str
    version: str
    notes: str
    sla: SlaOut
    created_at: datetime
    readiness: ReadinessOut


class OpenRolloutOut(Schema):
    id: int
    state: str
    stage: str
    traffic_percent: float
    version: str | None


class InProductionOut(Schema):
    handler: str = Field(..., description="who handles the agent's traffic when no rollout is open: agent or human")
    version: str | None = Field(..., description="the incumbent version; null: people")
    since: datetime


class LineageOut(Schema):
    version: str | None = Field(..., description="the version in production then; null: people")
    since: datetime | None
    until: datetime | None
    how: str = Field(..., description="completed (its rollout completed), reverted (by hand), initial")
    rollout: int | None
    by: str | None
    reason: str


class AgentDetailOut(AgentOut):
    in_production: InProductionOut
    lineage: list[LineageOut] = Field(..., description="who was in production when, newest first")
    versions: list[VersionOut]
    active_rollout: OpenRolloutOut | None


class ResultOut(Schema):
    item: str
    status: str
    evidence: str


class EvaluationOut(Schema):
    id: int
    version: str
    evaluated_by: str | None
    evaluated_at: datetime
    expires_at: datetime
    notes: str
    results: list[ResultOut]


class EvaluationRecordedOut(Schema):
    evaluation: EvaluationOut
    readiness: ReadinessOut


def readiness_summary_out(readiness: Readiness) -> dict:
    return {"ready": readiness.ready, "failing": readiness.failing}


def version_out(version: AgentVersion, *, full: bool = False) -> dict:
    readiness = version_readiness(version=version)
    return {
        "version": version.version,
        "notes": version.notes,
        "sla": {"p95_latency_ms": version.sla_p95_latency_ms, "max_error_rate": version.sla_max_error_rate},
        "created_at": version.created_at,
        "readiness": readiness.as_dict() if full else readiness_summary_out(readiness),
    }


def agent_out(agent: Agent, latest: str | None) -> dict:
    return {"slug": agent.slug, "name": agent.name, "owner_team": agent.owner_team,
            "description": agent.description, "created_at": agent.created_at, "latest_version": latest}


def evaluation_out(evaluation: Evaluation) -> dict:
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


def open_rollout_out(agent: Agent, versions: list[AgentVersion]) -> dict | None:
    rollout = selectors.open_rollout(agent=agent)
    if rollout is None:
        return None
    return {"id": rollout.id, "state": rollout.state, "stage": rollout.stage, "traffic_percent": rollout.traffic_percent,
            "version": rollout.version}


@router.post("/agents", response={201: AgentOut, 409: ErrorOut, 422: ErrorOut})
def agent_register(request, payload: AgentIn):
    principal = authorize(request, "agent.register")
    agent = services.agent_register(actor=principal.user, **payload.dict())
    return Status(201, agent_out(agent, None))


@router.get("/agents", response=list[AgentOut])
def agent_list(request, q: str = "", team: str = ""):
    authorize(request, "agent.read")
    return [agent_out(agent, latest) for agent, latest in selectors.agents_with_latest_version(q=q, team=team)]


@router.get("/agents/{slug}", response={200: AgentDetailOut, 404: ErrorOut})
def agent_detail(request, slug: str):
    authorize(request, "agent.read")
    agent = selectors.agent_get(slug=slug)
    versions = selectors.agent_versions(agent=agent)
    production = agent.production_version
    return {
        **agent_out(agent, versions[0].version if versions else None),
        "in_production": {"handler": "agent" if production else "human",
                          "version": production.version if production else None, "since": agent.production_since},
        "lineage": selectors.production_lineage(agent=agent),
        "versions": [version_out(v) for v in versions],
        "active_rollout": open_rollout_out(agent, versions),
    }


@router.post("/agents/{slug}/versions", response={201: VersionCreatedOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut})
def version_add(request, slug: str, payload: VersionIn):
    principal = authorize(request, "version.add")
    agent = selectors.agent_get(slug=slug)
    version = services.version_add(
        actor=principal.user, agent=agent, version=payload.version, notes=payload.notes,
        sla_p95_latency_ms=payload.sla.p95_latency_ms, sla_max_error_rate=payload.sla.max_error_rate,
    )
    return Status(201, {"agent": agent.slug, **version_out(version)})


@router.get("/agents/{slug}/versions/{version}", response={200: VersionDetailOut, 404: ErrorOut})
def version_detail(request, slug: str, version: str):
    authorize(request, "agent.read")
    row = selectors.version_get(agent=selectors.agent_get(slug=slug), version=version)
    return {"agent": slug, **version_out(row, full=True)}


@router.post("/agents/{slug}/versions/{version}/evaluations",
             response={201: EvaluationRecordedOut, 404: ErrorOut, 422: ErrorOut})
def evaluation_record(request, slug: str, version: str, payload: EvaluationIn):
    principal = authorize(request, "evaluation.record")
    row = selectors.version_get(agent=selectors.agent_get(slug=slug), version=version)
    evaluation = services.evaluation_record(
        actor=principal.user, version=row, results=[r.dict() for r in payload.results], notes=payload.notes,
        ttl_days=payload.ttl_days,
    )
    return Status(201, {"evaluation": evaluation_out(evaluation), "readiness": version_readiness(version=row).as_dict()})


@router.get("/agents/{slug}/versions/{version}/readiness", response={200: ReadinessOut, 404: ErrorOut})
def readiness_detail(request, slug: str, version: str):
    authorize(request, "agent.read")
    row = selectors.version_get(agent=selectors.agent_get(slug=slug), version=version)
    return version_readiness(version=row).as_dict()


@router.get("/checklist", response=list[ChecklistItemOut])
def checklist_item_list(request):
    authorize(request, "agent.read")
    return list(selectors.checklist_items())


@router.post("/checklist", response={201: ChecklistItemOut, 409: ErrorOut, 422: ErrorOut})
def checklist_item_add(request, payload: ChecklistItemIn):
    principal = authorize(request, "checklist.add")
    return Status(201, services.checklist_item_add(actor=principal.user, **payload.dict()))
