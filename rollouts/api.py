"""HTTP API of rollouts: start, show, promote (four eyes), roll back / pause / resume, route."""
from __future__ import annotations

import re
from datetime import datetime

from typing import Any

from django.http import HttpResponse
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from agents.models import Agent, AgentVersion
from rolloutops.api import require
from rolloutops.exceptions import NotFound
from rolloutops.models import Scope
from rolloutops.roles import ALL_ROLES, Role
from telemetry.selectors import rollout_discrepancy

from . import selectors
from .gates import current_stage, stage_figures
from .models import PromotionRequest, Rollout
from .promotions import promotion_approve, promotion_reject, promotion_request
from .routing import route, routing_snapshot
from .services import (
    production_revert, rollout_pause, rollout_plan_update, rollout_resume, rollout_rollback, rollout_start,
)

router = Router(tags=["rollouts"])
SLUG = re.compile(r"[-a-zA-Z0-9_]{1,64}")

OPERATOR = {Role.OPERATOR}
MANAGER = {Role.MANAGER}


class GuardrailsIn(Schema):
    # Ranges are checked by the plan rules (stages.parse_plan), which name the stage and the field.
    max_error_rate: float | None = Field(None, description="a rate strictly between 0 and 1")
    max_escalation_rate: float | None = Field(None, description="a rate strictly between 0 and 1")
    max_p95_latency_ms: float | None = Field(None, description="milliseconds, > 0")
    max_disagreement_rate: float | None = Field(None, description="a rate strictly between 0 and 1")
    baseline_error_rate: float | None = Field(None, description="a rate strictly between 0 and 1")


class StageIn(Schema):
    name: str = Field(..., min_length=1, max_length=40)
    mode: str = Field(..., pattern="^(off|shadow|live)$")
    traffic_percent: float = Field(0, ge=0, le=100)
    min_duration_s: int = Field(0, ge=0)
    min_samples: int = Field(0, ge=0)
    agreement_bar: float | None = Field(None, ge=0, le=1)
    guardrails: GuardrailsIn | None = None
    inconclusive_after_s: int | None = Field(None, ge=0, le=7 * 24 * 3600,
                                             description="live stages: seconds without agent events before the "
                                             "rollout is paused as inconclusive (default 600)")


class RolloutIn(Schema):
    agent: str
    version: str
    plan: list[StageIn] | None = None
    reason: str = ""
    error_budget: float | None = Field(None, description="the probability that a healthy candidate is falsely "
                                       "rolled back over the whole plan (default 0.01)")


class PlanIn(Schema):
    plan: list[StageIn]


class ReasonIn(Schema):
    reason: str = Field(..., min_length=1, max_length=2000)


class PromotionIn(Schema):
    reason: str = Field("", max_length=2000)


class DecisionIn(Schema):
    comment: str = Field("", max_length=2000)


class StageOut(Schema):
    name: str
    mode: str
    traffic_percent: float
    min_duration_s: int
    min_samples: int
    agreement_bar: float | None
    guardrails: dict
    inconclusive_after_s: int | None = None
    entered_at: datetime | None


class TransitionOut(Schema):
    at: datetime
    action: str
    from_stage: str
    to_stage: str
    from_state: str
    to_state: str
    traffic_percent: float
    actor: str | None
    automatic: bool
    reason: str
    promotion: int | None


class RolloutOut(Schema):
    id: int
    agent: str
    version: str
    incumbent: str | None = Field(None, description="the version the candidate is compared with and that keeps "
                                  "the rest of the traffic; null: humans")
    error_budget: float = 0.01
    state: str
    stage: str
    traffic_percent: float
    stage_entered_at: datetime
    started_by: str | None
    created_at: datetime
    ended_at: datetime | None
    end_reason: str
    plan: list[StageOut]
    history: list[TransitionOut]


class PromotionOut(Schema):
    id: int
    rollout: int
    from_stage: str
    to_stage: str
    status: str
    unmet: list[str]
    requested_by: str | None
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    comment: str


class RouteOut(Schema):
    handler: str = Field(..., description="who acts on this request: agent or human")
    version: str | None = Field(..., description="the acting version; null when people act")
    shadow: bool = Field(..., description="the candidate also runs on this request, beside the incumbent")
    shadow_version: str | None = Field(..., description="the candidate running in shadow, or null")
    rollout: int | None
    stage: str | None
    traffic_percent: float = Field(..., description="the candidate's share of traffic now")
    bucket: int | None
    state: str | None


class RevertIn(Schema):
    reason: str = Field(..., min_length=1, max_length=2000)


class ProductionOut(Schema):
    agent: str
    handler: str
    version: str | None
    since: datetime
    reverted_from: str | None
    rollout: int | None


class DetailOut(Schema):
    detail: Any


class GuardrailOut(Schema):
    name: str
    label: str
    value: float | None
    threshold: float
    verdict: str
    n: int
    statistic: float | None
    boundary: float | None
    method: str
    detail: str


class GuardrailsOut(Schema):
    rollout: int
    stage: str
    mode: str
    state: str
    samples: int
    guardrails: list[GuardrailOut]
    healthy: bool


def _rollout(rollout_id: int) -> Rollout:
    rollout = Rollout.objects.select_related("agent", "version", "incumbent_version").filter(pk=rollout_id).first()
    if rollout is None:
        raise NotFound(f"no rollout #{rollout_id}")
    return rollout


def _promotion(promotion_id: int) -> PromotionRequest:
    promotion = PromotionRequest.objects.select_related("rollout").filter(pk=promotion_id).first()
    if promotion is None:
        raise NotFound(f"no promotion request #{promotion_id}")
    return promotion


def _plan_dicts(plan: list[StageIn] | None) -> list[dict] | None:
    if plan is None:
        return None
    out = []
    for stage in plan:
        data = stage.dict()
        data["guardrails"] = {k: v for k, v in (data.get("guardrails") or {}).items() if v is not None}
        out.append(data)
    return out


@router.post("/rollouts", response={201: RolloutOut})
def create_rollout(request, payload: RolloutIn):
    principal = require(request, roles=OPERATOR)
    version = AgentVersion.objects.select_related("agent").filter(agent__slug=payload.agent, version=payload.version).first()
    if version is None:
        if not Agent.objects.filter(slug=payload.agent).exists():
            raise NotFound(f"no agent {payload.agent!r}")
        raise NotFound(f"agent {payload.agent!r} has no version {payload.version!r}")
    rollout = rollout_start(actor=principal.user, version=version, plan=_plan_dicts(payload.plan), reason=payload.reason,
                            error_budget=payload.error_budget)
    return Status(201, selectors.rollout_as_dict(_rollout(rollout.pk)))


@router.get("/rollouts", response=list[RolloutOut])
def list_rollouts(request, state: str = "", agent: str = "", limit: int = Query(50, ge=1, le=200),
                  offset: int = Query(0, ge=0, le=1_000_000)):
    require(request, roles=ALL_ROLES)
    qs = Rollout.objects.select_related("agent", "version", "incumbent_version", "started_by").order_by("-created_at")
    if state:
        qs = qs.filter(state=state)
    if agent:
        qs = qs.filter(agent__slug=agent)
    return [selectors.rollout_as_dict(r) for r in qs[offset: offset + limit]]


@router.get("/rollouts/{rollout_id}", response=RolloutOut)
def get_rollout(request, rollout_id: int):
    require(request, roles=ALL_ROLES)
    return selectors.rollout_as_dict(_rollout(rollout_id))


@router.put("/rollouts/{rollout_id}/plan", response=RolloutOut)
def update_plan(request, rollout_id: int, payload: PlanIn):
    principal = require(request, roles=OPERATOR)
    rollout = rollout_plan_update(actor=principal.user, rollout=_rollout(rollout_id), plan=_plan_dicts(payload.plan))
    return selectors.rollout_as_dict(_rollout(rollout.pk))


@router.post("/rollouts/{rollout_id}/promotions", response={201: PromotionOut})
def request_promotion(request, rollout_id: int, payload: PromotionIn = None):
    principal = require(request, roles=OPERATOR)
    promotion = promotion_request(actor=principal.user, rollout=_rollout(rollout_id), reason=payload.reason if payload else "")
    return Status(201, selectors.promotion_as_dict(promotion))


@router.get("/promotions", response=list[PromotionOut])
def list_promotions(request, status: str = "pending", rollout: int | None = Query(None, ge=1, le=2**53),
                    limit: int = Query(50, ge=1, le=200)):
    require(request, roles={Role.OPERATOR, Role.MANAGER})
    qs = PromotionRequest.objects.select_related("requested_by", "decided_by").order_by("-requested_at")
    if status:
        qs = qs.filter(status=status)
    if rollout:
        qs = qs.filter(rollout_id=rollout)
    return [selectors.promotion_as_dict(p) for p in qs[:limit]]


@router.get("/promotions/{promotion_id}", response=PromotionOut)
def get_promotion(request, promotion_id: int):
    require(request, roles=ALL_ROLES)
    return selectors.promotion_as_dict(_promotion(promotion_id))


@router.post("/promotions/{promotion_id}/approve", response=PromotionOut)
def approve_promotion(request, promotion_id: int, payload: DecisionIn = None):
    principal = require(request, roles=MANAGER)
    promotion = _promotion(promotion_id)
    promotion_approve(actor=principal.user, promotion=promotion, comment=payload.comment if payload else "")
    return selectors.promotion_as_dict(_promotion(promotion_id))


@router.post("/promotions/{promotion_id}/reject", response=PromotionOut)
def reject_promotion(request, promotion_id: int, payload: DecisionIn = None):
    principal = require(request, roles=MANAGER)
    promotion = promotion_reject(actor=principal.user, promotion=_promotion(promotion_id),
                                 comment=payload.comment if payload else "")
    return selectors.promotion_as_dict(promotion)


@router.post("/rollouts/{rollout_id}/rollback", response=RolloutOut)
def rollback(request, rollout_id: int, payload: ReasonIn):
    principal = require(request, roles=OPERATOR)
    rollout_rollback(actor=principal.user, rollout=_rollout(rollout_id), reason=payload.reason)
    return selectors.rollout_as_dict(_rollout(rollout_id))


@router.post("/rollouts/{rollout_id}/pause", response=RolloutOut)
def pause(request, rollout_id: int, payload: ReasonIn):
    principal = require(request, roles=OPERATOR)
    rollout_pause(actor=principal.user, rollout=_rollout(rollout_id), reason=payload.reason)
    return selectors.rollout_as_dict(_rollout(rollout_id))


@router.post("/rollouts/{rollout_id}/resume", response=RolloutOut)
def resume(request, rollout_id: int, payload: ReasonIn):
    principal = require(request, roles=OPERATOR)
    rollout_resume(actor=principal.user, rollout=_rollout(rollout_id), reason=payload.reason)
    return selectors.rollout_as_dict(_rollout(rollout_id))


@router.get("/rollouts/{rollout_id}/guardrails", response=GuardrailsOut)
def guardrails(request, rollout_id: int):
    require(request, roles=ALL_ROLES)
    rollout = _rollout(rollout_id)
    stage = current_stage(rollout)
    measured = stage_figures(rollout=rollout, stage=stage)
    results = measured["guardrails"]
    return {
        "rollout": rollout.pk, "stage": stage.name, "mode": stage.mode, "state": rollout.state,
        "samples": measured["metrics"].agent_events,
        "guardrails": [g.as_dict() for g in results],
        "healthy": not any(g.verdict == "breached" for g in results),
    }


@router.get("/route", response=RouteOut)
def route_request(request, agent: str, key: str):
    """Who handles this request: the candidate for the keys in its buckets in a live stage, the
    incumbent (humans or the version in production) for every other key, with the candidate
    beside it in shadow. Sticky and monotone; when in doubt, the human path."""
    require(request, roles=OPERATOR, scope=Scope.ROUTE_READ)
    if not key or len(key) > 200:
        raise HttpError(422, "key: 1 to 200 characters")
    if not SLUG.fullmatch(agent):
        raise NotFound(f"no agent {agent!r}")
    answer = route(agent, key)
    if answer is None:
        raise NotFound(f"no agent {agent!r}")
    return answer.as_dict()


class RoutingOut(Schema):
    generated_at: datetime
    buckets: int
    agents: dict[str, Any]


@router.get("/routing", response={200: RoutingOut, 304: None},
            summary="The routing snapshot of every agent (for client libraries that route locally)",
            description="Each agent's incumbent and open rollout (stage, mode, the candidate's traffic share, "
            "salt, candidate version): with `bucket = sha256(salt + 0x1f + key)[:8] mod 10000`, a key goes to the "
            "candidate when `bucket < traffic_percent × 100` in an active live stage, else to the incumbent. "
            "Answers with an `ETag`; send it back in `If-None-Match` to get 304 while nothing changed.")
def routing(request):
    require(request, roles=OPERATOR, scope=Scope.ROUTE_READ)
    snapshot, etag = routing_snapshot()
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(RoutingOut(**snapshot).model_dump_json(), content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = "no-cache"
    return response


@router.post("/agents/{slug}/revert", response=ProductionOut,
             summary="Production back to the previous incumbent, at once, with a reason")
def revert_production(request, slug: str, payload: RevertIn):
    principal = require(request, roles=OPERATOR)
    agent = Agent.objects.select_related("production_version").filter(slug=slug).first()
    if agent is None:
        raise NotFound(f"no agent {slug!r}")
    change = production_revert(actor=principal.user, agent=agent, reason=payload.reason)
    return {"agent": agent.slug, "handler": "agent" if change.to_version else "human",
            "version": change.to_version.version if change.to_version else None, "since": change.at,
            "reverted_from": change.from_version.version if change.from_version else None, "rollout": change.rollout_id}


@router.get(
    "/rollouts/{rollout_id}/discrepancy",
    response={200: dict[str, Any], 404: DetailOut},
    summary="Shadow comparison figures of a rollout, against humans or the incumbent version",
    description="Pairs, agreement with its Wilson 95 % interval, Cohen's kappa, the confusion matrix "
    "(rows candidate label, columns reference label), per-segment agreement with flags, direction of "
    "disagreement per label pair (exact McNemar), the hourly series and the 20 most recent discrepant pairs. "
    "`?against=human|incumbent` picks the reference (default: human when there are human pairs, else "
    "incumbent); `references` counts the pairs of each. `?stage=` limits it to one stage. Read from rollups; "
    "`pending_events` counts events received but not yet folded in.",
)
def get_discrepancy(request, rollout_id: int, stage: str | None = None, against: str | None = None):
    require(request, roles=ALL_ROLES)
    _rollout(rollout_id)
    return rollout_discrepancy(rollout_id=rollout_id, stage=stage or None, against=against or None)
