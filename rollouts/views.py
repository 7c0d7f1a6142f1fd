"""Pages of rollouts: the list, the rollout page with its live panels and actions, the approvals inbox."""
from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling, trigger_client_event

from rolloutops.exceptions import DomainError
from rolloutops.pages import htmx_partial, paginate
from rolloutops.roles import Role, has_role, role_required

from . import selectors
from .gates import human_duration, promotion_gates
from .models import PromotionRequest, PromotionStatus, Rollout, RolloutState, StageMode
from .promotions import promotion_approve, promotion_cancel, promotion_reject, promotion_request
from .services import production_revert, rollout_pause, rollout_resume, rollout_rollback, rollout_start
from .stages import allowed_actions

LIST_FILTERS = ("state", "stage", "team", "health", "q", "sort")


def _text(exc: DomainError) -> str:
    """A domain error as one line for a page message (a plan error may list several problems)."""
    return exc.detail if isinstance(exc.detail, str) else "; ".join(map(str, exc.detail))


@require_GET
def rollout_list(request):
    filters = {key: request.GET.get(key, "").strip() for key in LIST_FILTERS}
    filters["sort"] = filters["sort"] or "newest"
    page = paginate(request, selectors.rollout_list(**filters), per_page=25)
    context = {"page": page, "filters": filters, **selectors.rollout_filter_choices()}
    template = "rollouts/rollout_list.html#rollout-table" if htmx_partial(request) else "rollouts/rollout_list.html"
    return render(request, template, context)


def _stage_rows(rollout: Rollout) -> list[dict]:
    from django.utils import timezone

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
    user = request.user
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
        "can_operate": has_role(user, Role.OPERATOR),
        "can_decide": bool(pending) and has_role(user, Role.MANAGER) and pending.requested_by_id != user.pk,
        "can_promote": has_role(user, Role.OPERATOR) and "promote" in actions and not pending,
        "can_pause": "pause" in actions, "can_resume": "resume" in actions, "can_rollback": "rollback" in actions,
        "transitions": rollout.transitions.select_related("actor", "promotion").order_by("-at", "-id"),
        "promotions": rollout.promotions.select_related("requested_by", "decided_by").order_by("-requested_at")[:20],
    }


@require_GET
def rollout_detail(request, rollout_id: int):
    rollout = get_object_or_404(Rollout.objects.select_related("agent", "version", "incumbent_version", "started_by"),
                                pk=rollout_id)
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
        from .charts import guardrail_timeline

        live_stage = context["current"] if context["current"].mode == StageMode.LIVE else rollout.stages.filter(mode=StageMode.LIVE).first()
        context["guardrail_figure"] = guardrail_timeline(history["hourly"], thresholds=live_stage.guardrails if live_stage else {},
                                                        marks=history["marks"])
    if context["has_shadow"]:
        from telemetry.selectors import shadow_panel_context

        bar = rollout.stages.filter(mode=StageMode.SHADOW).values_list("agreement_bar", flat=True).first()
        context.update(shadow_panel_context(rollout=rollout, bar=bar, against=request.GET.get("against") or None))
    return render(request, "rollouts/rollout_detail.html", context)


def _after_action(request, rollout_id: int, message: str | None = None, error: str | None = None):
    if error:
        messages.error(request, error)
    elif message:
        messages.success(request, message)
    if request.htmx:
        rollout = get_object_or_404(Rollout.objects.select_related("agent", "version", "incumbent_version", "started_by"),
                                    pk=rollout_id)
        response = render(request, "rollouts/rollout_detail.html#live-panel", _detail_context(request, rollout))
        return trigger_client_event(response, "rolloutChanged", {"rollout": rollout_id})
    return redirect("rollouts:detail", rollout_id=rollout_id)


@require_POST
@role_required(Role.OPERATOR)
def rollout_create(request):
    """Start a rollout of a version with the default plan (plans are edited through the API)."""
    from agents.models import AgentVersion

    version = get_object_or_404(AgentVersion.objects.select_related("agent"), agent__slug=request.POST.get("agent", ""),
                                version=request.POST.get("version", ""))
    try:
        rollout = rollout_start(actor=request.user, version=version, reason="started from the version page")
    except DomainError as exc:
        messages.error(request, _text(exc))
        return redirect(f"/agents/{version.agent.slug}/versions/{version.version}/")
    messages.success(request, f"Rollout #{rollout.pk} of {version} started in staging.")
    return redirect("rollouts:detail", rollout_id=rollout.pk)


@require_POST
@role_required(Role.OPERATOR)
def production_revert_view(request, slug: str):
    """Production back to the previous incumbent, from the agent page."""
    from agents.models import Agent

    agent = get_object_or_404(Agent.objects.select_related("production_version"), slug=slug)
    try:
        change = production_revert(actor=request.user, agent=agent, reason=request.POST.get("reason", ""))
    except DomainError as exc:
        messages.error(request, f"Not reverted: {_text(exc)}")
    else:
        back = change.to_version.version if change.to_version else "humans"
        messages.success(request, f"Production reverted: every request now goes to {back}.")
    return redirect("agents:detail", slug=slug)


@require_POST
@role_required(Role.OPERATOR)
def rollout_action(request, rollout_id: int, action: str):
    rollout = get_object_or_404(Rollout.objects.select_related("agent", "version"), pk=rollout_id)
    reason = request.POST.get("reason", "").strip()
    try:
        if action == "promote":
            promotion = promotion_request(actor=request.user, rollout=rollout, reason=reason)
            return _after_action(request, rollout_id, f"Promotion to {promotion.to_stage} requested; a manager decides.")
        if action == "pause":
            rollout_pause(actor=request.user, rollout=rollout, reason=reason)
            return _after_action(request, rollout_id, "Paused: all traffic goes to humans.")
        if action == "resume":
            rollout_resume(actor=request.user, rollout=rollout, reason=reason)
            return _after_action(request, rollout_id, "Resumed: stabilization restarts now.")
        if action == "rollback":
            rollout_rollback(actor=request.user, rollout=rollout, reason=reason)
            return _after_action(request, rollout_id, "Rolled back: traffic to the agent is 0 %.")
    except DomainError as exc:
        return _after_action(request, rollout_id, error=_text(exc))
    return HttpResponse(status=404)


def _approvals_context(request) -> dict:
    inbox = []
    for promotion in selectors.promotion_inbox():
        report = promotion_gates(rollout=promotion.rollout)
        inbox.append({
            "promotion": promotion, "report": report, "figures": report.evidence["stage"],
            "readiness": report.evidence["readiness"],
            "time_in_stage": human_duration(report.evidence["time_in_stage_s"]),
            "own": promotion.requested_by_id == request.user.pk,
        })
    return {"inbox": inbox, "decided": selectors.recent_decisions(), "is_manager": has_role(request.user, Role.MANAGER)}


@require_GET
@role_required(Role.MANAGER, Role.OPERATOR)
def approvals(request):
    template = "rollouts/approvals.html#inbox" if htmx_partial(request) else "rollouts/approvals.html"
    return render(request, template, _approvals_context(request))


@require_POST
@role_required(Role.MANAGER, Role.OPERATOR)
def promotion_decide(request, promotion_id: int, decision: str):
    promotion = get_object_or_404(PromotionRequest.objects.select_related("rollout"), pk=promotion_id)
    comment = request.POST.get("comment", "").strip()
    try:
        if decision == "approve":
            rollout = promotion_approve(actor=request.user, promotion=promotion, comment=comment)
            messages.success(request, f"Approved: {rollout.version} is now in {rollout.stage_name} ({rollout.traffic_percent:g} %).")
        elif decision == "reject":
            promotion_reject(actor=request.user, promotion=promotion, comment=comment)
            messages.success(request, f"Rejected promotion #{promotion.pk}.")
        elif decision == "cancel":
            promotion_cancel(actor=request.user, promotion=promotion)
            messages.success(request, f"Withdrew promotion #{promotion.pk}.")
        else:
            return HttpResponse(status=404)
    except DomainError as exc:
        messages.error(request, _text(exc))
    if request.htmx:
        # In place: the inbox re-renders with the outcome on top; other panels may listen.
        response = render(request, "rollouts/approvals.html#inbox", _approvals_context(request))
        return trigger_client_event(response, "promotionDecided", {"promotion": promotion.pk})
    next_url = request.POST.get("next") or ""
    return redirect(next_url if next_url.startswith("/") and not next_url.startswith("//") else reverse("rollouts:approvals"))
