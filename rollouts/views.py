"""Pages of rollouts: the list, the rollout page with its live panels and actions, the shadow
comparison and one request's decisions side by side, the approvals inbox, reverting production."""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling, trigger_client_event

from agents.selectors import agent_get, version_get
from rolloutops import policy
from rolloutops.exceptions import DomainError, NotFound
from rolloutops.pages import error_text, htmx_partial, page_allows, paginate, require_action
from telemetry.selectors import REFERENCES, pair_detail, shadow_panel_context

from . import promotions, selectors, services
from .charts import guardrail_timeline
from .gates import human_duration, promotion_gates
from .models import PromotionStatus, Rollout, RolloutState, StageMode, TransitionAction
from .stages import allowed_actions

LIST_FILTERS = ("state", "stage", "team", "health", "q", "sort")


@require_GET
@require_action("rollout.read")
def rollout_list(request):
    filters = {key: request.GET.get(key, "").strip() for key in LIST_FILTERS}
    filters["sort"] = filters["sort"] or "newest"
    page = paginate(request, selectors.rollout_list(**filters), per_page=25)
    context = {"page": page, "filters": filters, **selectors.rollout_filter_choices()}
    template = "rollouts/rollout_list.html#rollout-table" if htmx_partial(request) else "rollouts/rollout_list.html"
    return render(request, template, context)


def _stage_rows(rollout: Rollout) -> list[dict]:
    now = timezone.now()
    rows = []
    for stage in rollout.stages.all():
        is_current = stage.position == rollout.stage_index
        rows.append({
            "stage": stage,
            "current": is_current,
            "done": stage.position < rollout.stage_index,
            "stabilized": human_duration((now - rollout.stage_entered_at).total_seconds()) if is_current else None,
            "min_duration": human_duration(stage.min_duration_s) if stage.min_duration_s else "—",
        })
    return rows


def _detail_context(request, rollout: Rollout) -> dict:
    report = promotion_gates(rollout=rollout)
    figures = report.evidence["stage"]
    current = rollout.stages.get(position=rollout.stage_index)
    pending = rollout.promotions.filter(status=PromotionStatus.PENDING).select_related("requested_by").first()
    actions = allowed_actions(rollout.state)
    return {
        "rollout": rollout,
        "current": current,
        "report": report,
        "figures": figures,
        "guardrails": figures["guardrails"],
        "stage_rows": _stage_rows(rollout),
        "time_in_stage": human_duration(report.evidence["time_in_stage_s"]),
        "pending": pending,
        "terminal": rollout.state in (RolloutState.ROLLED_BACK, RolloutState.COMPLETED, RolloutState.REVERTED),
        "has_shadow": rollout.stages.filter(mode=StageMode.SHADOW).exists(),
        # What the state allows (rollouts/stages.py); who may do it is the template's {% can %}.
        "can_decide": bool(pending) and policy.allows(request.user, "promotion.decide", pending),
        "can_promote": TransitionAction.PROMOTE in actions and not pending,
        "can_pause": TransitionAction.PAUSE in actions,
        "can_resume": TransitionAction.RESUME in actions,
        "can_rollback": TransitionAction.ROLLBACK in actions,
        "transitions": rollout.transitions.select_related("actor", "promotion").order_by("-at", "-id"),
        "promotions": rollout.promotions.select_related("requested_by", "decided_by").order_by("-requested_at")[:20],
    }


@require_GET
@require_action("rollout.read")
def rollout_detail(request, rollout_id: int):
    rollout = selectors.rollout_get(pk=rollout_id)
    context = _detail_context(request, rollout)
    if htmx_partial(request):
        response = render(request, "rollouts/rollout_detail.html#live-panel", context)
        if context["terminal"]:
            # The rollout has ended: draw the final state once and stop polling.
            return HttpResponseStopPolling(response.content)
        return response
    history = selectors.guardrail_history(rollout)
    context["has_live"] = bool(history["hourly"])
    if history["hourly"]:
        live_stage = context["current"] if context["current"].mode == StageMode.LIVE else rollout.stages.filter(mode=StageMode.LIVE).first()
        context["guardrail_figure"] = guardrail_timeline(history["hourly"], thresholds=live_stage.guardrails if live_stage else {},
                                                        marks=history["marks"])
    if context["has_shadow"]:
        context.update(shadow_panel_context(rollout=rollout, bar=_shadow_bar(rollout), against=_against(request)))
    return render(request, "rollouts/rollout_detail.html", context)


def _shadow_bar(rollout: Rollout) -> float | None:
    return (rollout.stages.filter(mode=StageMode.SHADOW, agreement_bar__isnull=False)
            .values_list("agreement_bar", flat=True).first())


def _against(request) -> str | None:
    against = request.GET.get("against") or None
    if against is not None and against not in REFERENCES:
        raise NotFound(f"compare against {' or '.join(REFERENCES)}, not {against!r}")
    return against


@require_GET
@require_action("rollout.read")
def shadow_panel(request, rollout_id: int):
    """The shadow comparison on its own page, or its live panel for htmx."""
    rollout = selectors.rollout_get(pk=rollout_id)
    context = shadow_panel_context(rollout=rollout, bar=_shadow_bar(rollout), against=_against(request))
    template = "rollouts/shadow_panel.html" if htmx_partial(request) else "rollouts/shadow_page.html"
    return render(request, template, context)


@require_GET
@require_action("rollout.read")
def pair(request, rollout_id: int, request_key: str):
    """One request: the candidate's decision beside the human's and the incumbent version's."""
    rollout = selectors.rollout_get(pk=rollout_id)
    detail = pair_detail(agent_id=rollout.agent_id, request_key=request_key, rollout_id=rollout.pk)
    if detail is None:
        raise NotFound("no events for this request key")
    candidate = detail["agent_event"]
    sides = [(f"Candidate {candidate.version.version}" if candidate and candidate.version else "Candidate", candidate),
             ("Human", detail["human_event"])]
    if detail["incumbent_event"] is not None or rollout.incumbent_version_id:
        incumbent = detail["incumbent_event"]
        sides.append((f"Incumbent {incumbent.version.version}" if incumbent else "Incumbent", incumbent))
    return render(request, "rollouts/pair.html", {"rollout": rollout, "request_key": request_key, "sides": sides,
                                                  **detail})


def _after_action(request, rollout_id: int, message: str | None = None, error: str | None = None):
    if error:
        messages.error(request, error)
    elif message:
        messages.success(request, message)
    if request.htmx:
        rollout = selectors.rollout_get(pk=rollout_id)
        response = render(request, "rollouts/rollout_detail.html#live-panel", _detail_context(request, rollout))
        return trigger_client_event(response, "rolloutChanged", {"rollout": rollout_id})
    return redirect("rollouts:detail", rollout_id=rollout_id)


@require_POST
@require_action("rollout.start")
def rollout_create(request):
    """Start a rollout of a version with the default plan (plans are edited through the API)."""
    version = version_get(agent=agent_get(slug=request.POST.get("agent", "")), version=request.POST.get("version", ""))
    try:
        rollout = services.rollout_start(actor=request.user, version=version, reason="started from the version page")
    except DomainError as exc:
        messages.error(request, error_text(exc))
        return redirect("agents:version", slug=version.agent.slug, version=version.version)
    messages.success(request, f"Rollout #{rollout.pk} of {version} started in staging.")
    return redirect("rollouts:detail", rollout_id=rollout.pk)


@require_POST
@require_action("production.revert")
def production_revert(request, slug: str):
    """Production back to the previous incumbent, from the agent page."""
    agent = agent_get(slug=slug)
    try:
        change = services.production_revert(actor=request.user, agent=agent, reason=request.POST.get("reason", ""))
    except DomainError as exc:
        messages.error(request, f"Not reverted: {error_text(exc)}")
    else:
        back = change.to_version.version if change.to_version else "humans"
        messages.success(request, f"Production reverted: every request now goes to {back}.")
    return redirect("agents:detail", slug=slug)


# The page's state changes: the policy action each needs, the service it calls, what it says once
# done. Whether the rollout's state allows it is the stage table's (rollouts/stages.py).
_ACTIONS = {
    TransitionAction.PAUSE: ("rollout.pause", services.rollout_pause, "Paused: all traffic goes to humans."),
    TransitionAction.RESUME: ("rollout.resume", services.rollout_resume, "Resumed: stabilization restarts now."),
    TransitionAction.ROLLBACK: ("rollout.rollback", services.rollout_rollback, "Rolled back: traffic to the agent is 0 %."),
}


@require_POST
def rollout_action(request, rollout_id: int, action: str):
    if action == TransitionAction.PROMOTE:
        page_allows(request, "promotion.request")
    elif action in _ACTIONS:
        page_allows(request, _ACTIONS[action][0])
    else:
        raise NotFound(f"no action {action!r}")
    rollout = selectors.rollout_get(pk=rollout_id)
    reason = request.POST.get("reason", "").strip()
    try:
        if action == TransitionAction.PROMOTE:
            promotion = promotions.promotion_request(actor=request.user, rollout=rollout, reason=reason)
            return _after_action(request, rollout_id, f"Promotion to {promotion.to_stage} requested; a manager decides.")
        _, service, done = _ACTIONS[action]
        service(actor=request.user, rollout=rollout, reason=reason)
        return _after_action(request, rollout_id, done)
    except DomainError as exc:
        return _after_action(request, rollout_id, error=error_text(exc))


def _approvals_context(request) -> dict:
    inbox = []
    for promotion in selectors.promotion_inbox():
        report = promotion_gates(rollout=promotion.rollout)
        inbox.append({
            "promotion": promotion, "report": report, "figures": report.evidence["stage"],
            "readiness": report.evidence["readiness"],
            "time_in_stage": human_duration(report.evidence["time_in_stage_s"]),
            "can_decide": policy.allows(request.user, "promotion.decide", promotion),
            "can_cancel": policy.allows(request.user, "promotion.cancel", promotion),
        })
    return {"inbox": inbox, "decided": selectors.recent_decisions()}


@require_GET
@require_action("promotion.inbox")
def approvals(request):
    template = "rollouts/approvals.html#inbox" if htmx_partial(request) else "rollouts/approvals.html"
    return render(request, template, _approvals_context(request))


# Each decision of the inbox and the policy action it needs (four eyes and "only the requester
# withdraws" are that action's condition in rolloutops/policy.py, checked by the service).
_DECISIONS = {"approve": "promotion.decide", "reject": "promotion.decide", "cancel": "promotion.cancel"}


@require_POST
def promotion_decide(request, promotion_id: int, decision: str):
    if decision not in _DECISIONS:
        raise NotFound(f"no decision {decision!r}")
    page_allows(request, _DECISIONS[decision])
    promotion = selectors.promotion_get(pk=promotion_id)
    comment = request.POST.get("comment", "").strip()
    try:
        if decision == "approve":
            rollout = promotions.promotion_approve(actor=request.user, promotion=promotion, comment=comment)
            messages.success(request, f"Approved: {rollout.version} is now in {rollout.stage_name} ({rollout.traffic_percent:g} %).")
        elif decision == "reject":
            promotions.promotion_reject(actor=request.user, promotion=promotion, comment=comment)
            messages.success(request, f"Rejected promotion #{promotion.pk}.")
        else:
            promotions.promotion_cancel(actor=request.user, promotion=promotion)
            messages.success(request, f"Withdrew promotion #{promotion.pk}.")
    except DomainError as exc:
        messages.error(request, error_text(exc))
    if request.htmx:
        # In place: the inbox re-renders with the outcome on top; other panels may listen.
        response = render(request, "rollouts/approvals.html#inbox", _approvals_context(request))
        return trigger_client_event(response, "promotionDecided", {"promotion": promotion.pk})
    next_url = request.POST.get("next") or ""
    return redirect(next_url if next_url.startswith("/") and not next_url.startswith("//") else reverse("rollouts:approvals"))
