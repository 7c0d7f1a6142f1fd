"""HTTP API of rollouts (mounted under /api/v1/ by console.api): start, show, promote (four eyes),
roll back / pause / resume, route and the routing snapshot, revert production, the shadow comparison.
Output is shaped here, one `<entity>_out` per schema."""
from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import create_model

from agents.selectors import agent_get, version_get
from rolloutops.auth import authorize, caller, refusal
from rolloutops.exceptions import NotFound
from rolloutops.probes import RETRY_AFTER_SECONDS, UNAVAILABLE, dependency_down
from rolloutops.schemas import ErrorOut
from telemetry.selectors import rollout_discrepancy

from . import promotions, selectors, services
from .gates import current_stage, stage_figures
from .guardrails import BREACHED, BUDGET_RULE, REGISTRY, VS_CONTROL
from .models import PromotionRequest, PromotionStatus, Rollout, StageMode
from .routing import route, routing_snapshot

router = Router(tags=["rollouts"])
_log = logging.getLogger("rolloutops.api")
SLUG = re.compile(r"[-a-zA-Z0-9_]{1,64}")


# One field per guardrail of the registry (and per tuning parameter). Ranges are checked by the plan
# rules (stages.parse_plan), which name the stage and the field.
GuardrailsIn = create_model(
    "GuardrailsIn", __base__=Schema,
    **{g.key: (float | None, Field(None, description=f"{g.label}: "
                                   + ("a rate strictly between 0 and 1" if g.unit == "rate" else "milliseconds, > 0")
                                   + (f" (the control's expected rate, shown until it has data)" if g.test == VS_CONTROL else "")))
       for g in REGISTRY},
    max_error_rate_increase=(float | None, Field(None, description="how much worse than the control the candidate's "
                                                  "error rate may be, relative (0: not worse; default 0)")),
)


class StageIn(Schema):
    name: str = Field(..., min_length=1, max_length=40)
    mode: StageMode
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
    guardrails: dict[str, float]
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


class SegmentOut(Schema):
    segment: str
    pairs: int
    agreements: int
    rate: float | None
    low: float
    high: float
    p_value: float | None
    flagged: bool


class DirectionOut(Schema):
    agent_label: str
    human_label: str
    a_to_b: int
    b_to_a: int
    p_value: float
    dominant: str | None
    significant: bool


class HourOut(Schema):
    hour: str
    pairs: int
    agreements: int
    rate: float | None
    low: float
    high: float


class DiscrepantPairOut(Schema):
    request_key: str
    segment: str
    agent_label: str
    reference_label: str
    human_label: str = Field(..., description="the reference's label (named for humans, the first reference)")
    occurred_at: str


class ConfusionOut(Schema):
    labels: list[str]
    matrix: list[list[int]]


class DiscrepancyOut(Schema):
    rollout: int
    stage: str | None
    against: str = Field(..., description="the reference: human or incumbent")
    references: dict[str, int] = Field(..., description="pairs against each reference")
    pairs: int
    agreements: int
    agreement: float | None
    interval: list[float]
    kappa: float | None
    confusion: ConfusionOut
    segments: list[SegmentOut]
    flagged_segments: list[str]
    directions: list[DirectionOut]
    hourly: list[HourOut]
    recent_discrepant: list[DiscrepantPairOut]
    computed_at: str | None
    pending_events: int


class RoutingOut(Schema):
    generated_at: datetime
    buckets: int
    agents: dict[str, Any]


class RevertIn(Schema):
    reason: str = Field(..., min_length=1, max_length=2000)


class ProductionOut(Schema):
    agent: str
    handler: str
    version: str | None
    since: datetime
    reverted_from: str | None
    rollout: int | None


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
    unit: str = Field(..., description="rate or ms")
    test: str = Field(..., description="above-threshold (one-sample) or vs-control (two-sample)")
    alpha: float | None = Field(None, description="this guardrail's share of the error budget, as a probability")
    share: float | None = Field(None, description="... as a fraction of the rollout's error budget")


class GuardrailsOut(Schema):
    rollout: int
    stage: str
    mode: str
    state: str
    samples: int
    error_budget: float = Field(..., description="the probability that a healthy candidate is falsely rolled back "
                                "over its whole plan")
    budget_rule: str
    guardrails: list[GuardrailOut]
    healthy: bool


def _name(user) -> str | None:
    return user.get_username() if user else None


def rollout_out(rollout: Rollout) -> dict:
    stages = list(rollout.stages.all())
    history = list(rollout.transitions.select_related("actor").order_by("at", "id"))
    return {
        "id": rollout.pk,
        "agent": rollout.agent.slug,
        "version": rollout.version.version,
        "incumbent": rollout.incumbent_version.version if rollout.incumbent_version_id else None,
        "error_budget": rollout.error_budget,
        "state": rollout.state,
        "stage": rollout.stage_name,
        "traffic_percent": rollout.traffic_percent,
        "stage_entered_at": rollout.stage_entered_at,
        "started_by": _name(rollout.started_by),
        "created_at": rollout.created_at,
        "ended_at": rollout.ended_at,
        "end_reason": rollout.end_reason,
        "plan": [
            {"name": s.name, "mode": s.mode, "traffic_percent": s.traffic_percent, "min_duration_s": s.min_duration_s,
             "min_samples": s.min_samples, "agreement_bar": s.agreement_bar, "guardrails": s.guardrails,
             "inconclusive_after_s": s.inconclusive_after_s, "entered_at": s.entered_at}
            for s in stages
        ],
        "history": [
            {"at": t.at, "action": t.action, "from_stage": t.from_stage, "to_stage": t.to_stage,
             "from_state": t.from_state, "to_state": t.to_state, "traffic_percent": t.traffic_percent,
             "actor": _name(t.actor) or ("rolloutops" if t.automatic else None), "automatic": t.automatic,
             "reason": t.reason, "promotion": t.promotion_id}
            for t in history
        ],
    }


def promotion_out(p: PromotionRequest) -> dict:
    return {
        "id": p.pk, "rollout": p.rollout_id, "from_stage": p.from_stage, "to_stage": p.to_stage, "status": p.status,
        "unmet": p.unmet or [], "requested_by": _name(p.requested_by), "requested_at": p.requested_at,
        "decided_by": _name(p.decided_by), "decided_at": p.decided_at, "comment": p.comment,
    }


def guardrails_out(rollout: Rollout) -> dict:
    stage = current_stage(rollout)
    measured = stage_figures(rollout=rollout, stage=stage)
    results = measured["guardrails"]
    return {
        "rollout": rollout.pk, "stage": stage.name, "mode": stage.mode, "state": rollout.state,
        "samples": measured["metrics"].agent_events,
        "error_budget": rollout.error_budget,
        "budget_rule": BUDGET_RULE,
        "guardrails": [g.as_dict() for g in results],
        "healthy": not any(g.verdict == BREACHED for g in results),
    }


def _plan_dicts(plan: list[StageIn] | None) -> list[dict] | None:
    if plan is None:
        return None
    out = []
    for stage in plan:
        data = stage.dict()
        data["guardrails"] = {k: v for k, v in (data.get("guardrails") or {}).items() if v is not None}
        out.append(data)
    return out


def _reload(rollout_id: int) -> dict:
    return rollout_out(selectors.rollout_get(pk=rollout_id))


@router.post("/rollouts", response={201: RolloutOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut})
def rollout_start(request, payload: RolloutIn):
    principal = authorize(request, "rollout.start")
    version = version_get(agent=agent_get(slug=payload.agent), version=payload.version)
    rollout = services.rollout_start(actor=principal.user, version=version, plan=_plan_dicts(payload.plan),
                                     reason=payload.reason, error_budget=payload.error_budget)
    return Status(201, _reload(rollout.pk))


@router.get("/rollouts", response=list[RolloutOut])
def rollout_list(request, state: str = "", agent: str = "", limit: int = Query(50, ge=1, le=200),
                 offset: int = Query(0, ge=0, le=1_000_000)):
    authorize(request, "rollout.read")
    qs = Rollout.objects.select_related("agent", "version", "incumbent_version", "started_by").order_by("-created_at")
    if state:
        qs = qs.filter(state=state)
    if agent:
        qs = qs.filter(agent__slug=agent)
    return [rollout_out(r) for r in qs[offset: offset + limit]]


@router.get("/rollouts/{rollout_id}", response={200: RolloutOut, 404: ErrorOut})
def rollout_detail(request, rollout_id: int):
    authorize(request, "rollout.read")
    return _reload(rollout_id)


@router.put("/rollouts/{rollout_id}/plan", response={200: RolloutOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut})
def rollout_plan_update(request, rollout_id: int, payload: PlanIn):
    principal = authorize(request, "rollout.plan")
    rollout = services.rollout_plan_update(actor=principal.user, rollout=selectors.rollout_get(pk=rollout_id),
                                           plan=_plan_dicts(payload.plan))
    return _reload(rollout.pk)


@router.post("/rollouts/{rollout_id}/promotions", response={201: PromotionOut, 404: ErrorOut, 409: ErrorOut})
def promotion_request(request, rollout_id: int, payload: PromotionIn = None):
    principal = authorize(request, "promotion.request")
    promotion = promotions.promotion_request(actor=principal.user, rollout=selectors.rollout_get(pk=rollout_id),
                                             reason=payload.reason if payload else "")
    return Status(201, promotion_out(promotion))


@router.get("/promotions", response=list[PromotionOut])
def promotion_list(request, status: str = PromotionStatus.PENDING.value,
                   rollout: int | None = Query(None, ge=1, le=2**53), limit: int = Query(50, ge=1, le=200)):
    authorize(request, "promotion.inbox")
    qs = PromotionRequest.objects.select_related("requested_by", "decided_by").order_by("-requested_at")
    if status:
        qs = qs.filter(status=status)
    if rollout:
        qs = qs.filter(rollout_id=rollout)
    return [promotion_out(p) for p in qs[:limit]]


@router.get("/promotions/{promotion_id}", response={200: PromotionOut, 404: ErrorOut})
def promotion_detail(request, promotion_id: int):
    authorize(request, "promotion.read")
    return promotion_out(selectors.promotion_get(pk=promotion_id))


@router.post("/promotions/{promotion_id}/approve", response={200: PromotionOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut})
def promotion_approve(request, promotion_id: int, payload: DecisionIn = None):
    principal = authorize(request, "promotion.decide")
    promotions.promotion_approve(actor=principal.user, promotion=selectors.promotion_get(pk=promotion_id),
                                 comment=payload.comment if payload else "")
    return promotion_out(selectors.promotion_get(pk=promotion_id))


@router.post("/promotions/{promotion_id}/reject", response={200: PromotionOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut})
def promotion_reject(request, promotion_id: int, payload: DecisionIn = None):
    principal = authorize(request, "promotion.decide")
    promotion = promotions.promotion_reject(actor=principal.user, promotion=selectors.promotion_get(pk=promotion_id),
                                            comment=payload.comment if payload else "")
    return promotion_out(promotion)


@router.post("/rollouts/{rollout_id}/rollback", response={200: RolloutOut, 404: ErrorOut, 409: ErrorOut})
def rollout_rollback(request, rollout_id: int, payload: ReasonIn):
    principal = authorize(request, "rollout.rollback")
    services.rollout_rollback(actor=principal.user, rollout=selectors.rollout_get(pk=rollout_id), reason=payload.reason)
    return _reload(rollout_id)


@router.post("/rollouts/{rollout_id}/pause", response={200: RolloutOut, 404: ErrorOut, 409: ErrorOut})
def rollout_pause(request, rollout_id: int, payload: ReasonIn):
    principal = authorize(request, "rollout.pause")
    services.rollout_pause(actor=principal.user, rollout=selectors.rollout_get(pk=rollout_id), reason=payload.reason)
    return _reload(rollout_id)


@router.post("/rollouts/{rollout_id}/resume", response={200: RolloutOut, 404: ErrorOut, 409: ErrorOut})
def rollout_resume(request, rollout_id: int, payload: ReasonIn):
    principal = authorize(request, "rollout.resume")
    services.rollout_resume(actor=principal.user, rollout=selectors.rollout_get(pk=rollout_id), reason=payload.reason)
    return _reload(rollout_id)


@router.get("/rollouts/{rollout_id}/guardrails", response={200: GuardrailsOut, 404: ErrorOut})
def guardrails_detail(request, rollout_id: int):
    authorize(request, "rollout.read")
    return guardrails_out(selectors.rollout_get(pk=rollout_id))


@router.get("/route", response={200: RouteOut, 404: ErrorOut})
def route_detail(request, agent: str, key: str):
    """Who handles this request: the candidate for the keys in its buckets in a live stage, the
    incumbent (humans or the version in production) for every other key, with the candidate
    beside it in shadow. Sticky and monotone; when in doubt, the human path."""
    authorize(request, "route.read")
    if not key or len(key) > 200:
        raise HttpError(422, "key: 1 to 200 characters")
    if not SLUG.fullmatch(agent):
        raise NotFound(f"no agent {agent!r}")
    answer = route(agent, key)
    if answer is None:
        raise NotFound(f"no agent {agent!r}")
    return answer.as_dict()


# GET /api/v1/route is the hot path of every runtime that does not route in-process, so it is
# served by the plain view below, mounted ahead of the API (console/urls.py), not through the
# operation above: django-ninja's dispatch, parameter model and response schema cost more than this
# endpoint's own work (docs/scaling.md, "Routing on the server"). The operation stays as its
# specification: it is what the OpenAPI document shows, and tests/rollouts/test_route_view.py
# holds the view to the operation's answers — fields, status codes, error bodies — case by case.
_AUTH_REQUIRED = {"detail": "authentication required: a valid, unexpired bearer token or a signed-in session"}


def _missing(params: list[str]) -> dict:
    return {"detail": [{"type": "missing", "loc": ["query", name], "msg": "Field required"} for name in params]}


def _json(body: dict, status: int = 200) -> JsonResponse:
    return JsonResponse(body, status=status, content_type="application/json; charset=utf-8")


def route_view(request: HttpRequest) -> HttpResponse:
    """GET /api/v1/route, answered as route_detail answers it. A dependency that is down is 503
    with Retry-After, as the API's handler says (console/api.py); any other error reaches the
    project's handler500 (JSON under /api/)."""
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"], content=b"Method not allowed")
    try:
        principal = caller(request)
        if principal is None:
            return _json(_AUTH_REQUIRED, 401)
        refused = refusal(principal, "route.read")
        if refused is not None:
            return _json({"detail": refused}, 403)
        agent, key = request.GET.get("agent"), request.GET.get("key")
        if agent is None or key is None:
            return _json(_missing([n for n, v in (("agent", agent), ("key", key)) if v is None]), 422)
        if not key or len(key) > 200:
            return _json({"detail": "key: 1 to 200 characters"}, 422)
        answer = route(agent, key) if SLUG.fullmatch(agent) else None
    except UNAVAILABLE as exc:
        down = dependency_down(exc)
        _log.warning("dependency down during an API call",
                     extra={"path": request.path, "dependency": down, "error": f"{type(exc).__name__}: {exc}"[:300]})
        response = _json({"detail": f"the {down} is unavailable; retry shortly"}, 503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if answer is None:
        return _json({"detail": f"no agent {agent!r}"}, 404)
    return _json(answer.as_dict())


@router.get("/routing", response={200: RoutingOut, 304: None},
            summary="The routing snapshot of every agent (for client libraries that route locally)",
            description="Each agent's incumbent and open rollout (stage, mode, the candidate's traffic share, "
            "salt, candidate version): with `bucket = sha256(salt + 0x1f + key)[:8] mod 10000`, a key goes to the "
            "candidate when `bucket < traffic_percent × 100` in an active live stage, else to the incumbent. "
            "Answers with an `ETag`; send it back in `If-None-Match` to get 304 while nothing changed.")
def routing_snapshot_detail(request):
    authorize(request, "route.read")
    snapshot, etag = routing_snapshot()
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(RoutingOut(**snapshot).model_dump_json(), content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = "no-cache"
    return response


@router.post("/agents/{slug}/revert", response={200: ProductionOut, 404: ErrorOut, 409: ErrorOut},
             summary="Production back to the previous incumbent, at once, with a reason")
def production_revert(request, slug: str, payload: RevertIn):
    principal = authorize(request, "production.revert")
    agent = agent_get(slug=slug)
    change = services.production_revert(actor=principal.user, agent=agent, reason=payload.reason)
    return {"agent": agent.slug, "handler": "agent" if change.to_version else "human",
            "version": change.to_version.version if change.to_version else None, "since": change.at,
            "reverted_from": change.from_version.version if change.from_version else None, "rollout": change.rollout_id}


@router.get(
    "/rollouts/{rollout_id}/discrepancy",
    response={200: DiscrepancyOut, 404: ErrorOut},
    summary="Shadow comparison figures of a rollout, against humans or the incumbent version",
    description="Pairs, agreement with its Wilson 95 % interval, Cohen's kappa, the confusion matrix "
    "(rows candidate label, columns reference label), per-segment agreement with flags, direction of "
    "disagreement per label pair (exact McNemar), the hourly series and the 20 most recent discrepant pairs. "
    "`?against=human|incumbent` picks the reference (default: human when there are human pairs, else "
    "incumbent); `references` counts the pairs of each. `?stage=` limits it to one stage. Read from rollups; "
    "`pending_events` counts events received but not yet folded in.",
)
def discrepancy_detail(request, rollout_id: int, stage: str | None = None, against: str | None = None):
    authorize(request, "rollout.read")
    selectors.rollout_get(pk=rollout_id)
    return rollout_discrepancy(rollout_id=rollout_id, stage=stage or None, against=against or None)
