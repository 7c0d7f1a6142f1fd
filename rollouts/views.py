"""Pages of rollouts: the list, the rollout page with its live panels, actions and plan editor, the
approvals inbox, reverting production (the shadow comparison's own pages: rollouts/shadow_views.py)."""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh, HttpResponseStopPolling, trigger_client_event

from agents.selectors import agent_get, version_get
from rolloutops import policy
from rolloutops.exceptions import DomainError, Invalid, NotFound
from rolloutops.pages import error_text, htmx_partial, page_allows, paginate, require_action

from . import plan_form, promotions, selectors, services
from .charts import guardrail_timeline
from .gates import current_stage, human_duration, promotion_gates
from .models import PromotionStatus, Rollout, RolloutState, StageMode, TransitionAction
from .shadow_views import shadow_context
from .stages import allowed_actions

LIST_FILTERS = ("state", "stage", "team", "health", "q", "sort")
PROMOTIONS_SHOWN = 20  # the rollout page's newest promotion requests


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


def _stamp(rollout: Rollout, promotions: list) -> str:
    """What a poll compares to know whether the history, the requests and the actions changed: every
    transition moves the revision; requests and their decisions may not."""
    return f"{rollout.revision}." + ".".join(f"{p.pk}{p.status[0]}" for p in promotions)


def _live_context(request, rollout: Rollout) -> dict:
    """The live figures (polled): state, gate, guardrails, stages; never a form."""
    report = promotion_gates(rollout=rollout)
    figures = report.evidence["stage"]
    current = current_stage(rollout)
    promotions = list(rollout.promotions.select_related("requested_by", "decided_by").order_by("-requested_at", "-id")[:PROMOTIONS_SHOWN])
    pending = next((p for p in promotions if p.status == PromotionStatus.PENDING), None)
    return {
        "rollout": rollout,
        "current": current,
        "report": report,
        "figures": figures,
        "guardrails": figures["guardrails"],
        "stage_rows": _stage_rows(rollout),
        "time_in_stage": human_duration(report.evidence["time_in_stage_s"]),
        "pending": pending,
        "promotions": promotions,
        "stamp": _stamp(rollout, promotions),
        "terminal": rollout.state in (RolloutState.ROLLED_BACK, RolloutState.COMPLETED, RolloutState.REVERTED),
        "can_decide": bool(pending) and policy.allows(request.user, "promotion.decide", pending),
    }


def _has_pending(rollout: Rollout, promotions: list | None) -> bool:
    """Whether a promotion request of the rollout waits for a decision; `promotions`, the newest
    PROMOTIONS_SHOWN requests as the live context read them, answer it without a query unless all of
    them are decided and there may be older ones."""
    if promotions is not None:
        if any(p.status == PromotionStatus.PENDING for p in promotions):
            return True
        if len(promotions) < PROMOTIONS_SHOWN:
            return False
    return rollout.promotions.filter(status=PromotionStatus.PENDING).exists()


def _record_context(rollout: Rollout, promotions: list | None = None) -> dict:
    """What changes only with an action: the actions the state allows (rollouts/stages.py; who may
    is the template's {% can %}) and the history. `promotions`: the live context's (_has_pending)."""
    actions = allowed_actions(rollout.state)
    return {
        "can_promote": TransitionAction.PROMOTE in actions and not _has_pending(rollout, promotions),
        "can_pause": TransitionAction.PAUSE in actions,
        "can_resume": TransitionAction.RESUME in actions,
        "can_rollback": TransitionAction.ROLLBACK in actions,
        "transitions": rollout.transitions.select_related("actor", "promotion").order_by("-at", "-id"),
    }


def _plan_editable(request, rollout: Rollout) -> bool:
    return (rollout.stage_index == 0 and rollout.state == RolloutState.ACTIVE
            and policy.allows(request.user, "rollout.plan"))


def _plan_context(rollout: Rollout, rows: list[dict] | None = None, errors: plan_form.PlanErrors | None = None) -> dict:
    stages = list(rollout.stages.all())
    keys = plan_form.guardrail_keys(stages)
    rows = plan_form.rows_from_stages(stages) if rows is None else rows
    return {"plan": {"rows": plan_form.table(rows, keys, errors), "keys": keys, "count": len(rows),
                     "errors": errors or plan_form.PlanErrors(), "modes": StageMode.choices}}


def _detail_context(request, rollout: Rollout) -> dict:
    live = _live_context(request, rollout)
    context = {**live, **_record_context(rollout, live["promotions"])}
    context["has_shadow"] = any(stage.mode == StageMode.SHADOW for stage in rollout.stages.all())
    context["plan_editable"] = _plan_editable(request, rollout)
    if context["plan_editable"]:
        context.update(_plan_context(rollout))
    return context


@require_GET
@require_action("rollout.read")
def rollout_detail(request, rollout_id: int):
    # The stages once, with the rollout: the gates, the figures, the charts and the table all ask of them.
    rollout = selectors.rollout_get(pk=rollout_id, with_stages=True)
    if htmx_partial(request):
        # A poll: the live figures; the actions, history and requests too when they changed since the
        # page's stamp (docs/pages.md). The forms are never re-sent while nothing changed.
        context = _live_context(request, rollout)
        context["changed"] = request.GET.get("seen") != context["stamp"]
        if context["changed"]:
            context.update(_record_context(rollout, context["promotions"]))
        response = render(request, "rollouts/rollout_detail.html#live-answer", context)
        if context["terminal"]:
            # The rollout has ended: draw the final state once and stop polling.
            return HttpResponseStopPolling(response.content)
        return response
    context = _detail_context(request, rollout)
    return _detail_page(request, rollout, context)


def _detail_page(request, rollout: Rollout, context: dict, status: int = 200):
    history = selectors.guardrail_history(rollout)
    context["has_live"] = bool(history["hourly"])
    if history["hourly"]:
        live_stage = (context["current"] if context["current"].mode == StageMode.LIVE
                      else next((s for s in rollout.stages.all() if s.mode == StageMode.LIVE), None))
        evidence = selectors.guardrail_evidence(rollout)
        context["guardrail_evidence"] = bool(evidence["trace"])
        context["guardrail_figure"] = guardrail_timeline(history["hourly"], thresholds=live_stage.guardrails if live_stage else {},
                                                        marks=history["marks"], trace=evidence["trace"],
                                                        boundaries=evidence["boundaries"])
    if context["has_shadow"]:
        # The fold state the gates read a moment ago: the panel's figures under the same watermark.
        report = context.get("report")
        context.update(shadow_context(request, rollout, fold_state=report.fold_state if report else None))
    return render(request, "rollouts/rollout_detail.html", context, status=status)


def _after_action(request, rollout_id: int, message: str | None = None, error: str | None = None):
    if error:
        messages.error(request, error)
    elif message:
        messages.success(request, message)
    if request.htmx:
        # Everything the action may have changed, out of band: figures, actions, history, requests,
        # the message (the forms answer with hx-swap="none"; docs/pages.md).
        rollout = selectors.rollout_get(pk=rollout_id)
        live = _live_context(request, rollout)
        context = {**live, **_record_context(rollout, live["promotions"]), "changed": True}
        response = render(request, "rollouts/rollout_detail.html#action-answer", context)
        return trigger_client_event(response, "rolloutChanged", {"rollout": rollout_id})
    return redirect("rollouts:detail", rollout_id=rollout_id)


@require_POST
@require_action("rollout.start")
def rollout_create(request):
    """Start a rollout of a version with the default plan; its page edits the plan while in staging."""
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


@require_POST
@require_action("rollout.plan")
def rollout_plan(request, rollout_id: int):
    """The plan editor: "add" and "remove" change the rows without saving; saving goes through the
    same service and rules as PUT /api/v1/rollouts/{id}/plan, whose problems come back beside the
    fields they name."""
    rollout = selectors.rollout_get(pk=rollout_id)
    keys = plan_form.guardrail_keys(rollout.stages.all())
    rows = plan_form.rows_from_post(request.POST, keys)
    errors = None
    if "add" in request.POST:
        rows.append(plan_form.blank_row())
    elif "remove" in request.POST:
        index = request.POST.get("remove", "")
        if index.isdigit() and int(index) < len(rows):
            del rows[int(index)]
    else:
        try:
            services.rollout_plan_update(actor=request.user, rollout=rollout, plan=plan_form.plan_from_rows(rows))
        except Invalid as exc:
            problems = exc.extra.get("errors") or ([exc.detail] if isinstance(exc.detail, str) else list(exc.detail))
            errors = plan_form.place_errors(problems, len(rows))
        except DomainError as exc:
            messages.error(request, f"Plan not saved: {error_text(exc)}")
            if request.htmx:
                return HttpResponseClientRefresh()
            return redirect("rollouts:detail", rollout_id=rollout_id)
        else:
            messages.success(request, "Plan saved: the stages below are the ones this rollout will walk.")
            if not request.htmx:
                return redirect("rollouts:detail", rollout_id=rollout_id)
            context = {**_live_context(request, rollout), **_plan_context(rollout)}
            return render(request, "rollouts/rollout_detail.html#plan-saved", context)
    if request.htmx:
        return render(request, "rollouts/plan_editor.html", {"rollout": rollout, **_plan_context(rollout, rows, errors)})
    # Without JavaScript: the whole page, with the rows as typed and the problems in place.
    context = _detail_context(request, rollout)
    context.update(_plan_context(rollout, rows, errors))
    return _detail_page(request, rollout, context, status=422 if errors else 200)


def _inbox_item(request, promotion) -> dict:
    if promotion.status != PromotionStatus.PENDING:
        return {"promotion": promotion, "decided": True}
    report = promotion_gates(rollout=promotion.rollout)
    return {
        "promotion": promotion, "report": report, "figures": report.evidence["stage"],
        "readiness": report.evidence["readiness"],
        "time_in_stage": human_duration(report.evidence["time_in_stage_s"]),
        "can_decide": policy.allows(request.user, "promotion.decide", promotion),
        "can_cancel": policy.allows(request.user, "promotion.cancel", promotion),
    }


def _shown(request) -> list[int]:
    return [int(part) for part in request.GET.get("shown", "").split(",") if part.isdigit()]


@require_GET
@require_action("promotion.inbox")
def approvals(request):
    inbox = [_inbox_item(request, p) for p in selectors.promotion_inbox()]
    context = {"inbox": inbox, "decided": selectors.recent_decisions()}
    if not htmx_partial(request):
        context["shown"] = ",".join(str(item["promotion"].pk) for item in inbox)
        return render(request, "rollouts/approvals.html", context)
    # A poll: fresh figures for the requests on screen, the new ones as cards, and the ones decided
    # elsewhere marked so; nothing that holds a form is replaced while its request waits.
    shown = _shown(request)
    pending = {item["promotion"].pk for item in inbox}
    for item in inbox:
        item["new"] = item["promotion"].pk not in shown
    gone = [pk for pk in shown if pk not in pending]
    inbox += [_inbox_item(request, p) for p in selectors.promotions_get(pks=gone)]
    context.update(inbox=inbox, added=any(item.get("new") for item in inbox),
                   shown=",".join(str(pk) for pk in [*shown, *(item["promotion"].pk for item in inbox if item.get("new"))]))
    return render(request, "rollouts/approvals.html#live-answer", context)


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
        # In place: this request's card says what became of it, the recent decisions list it; the
        # other cards, and what is typed in them, stay as they are.
        item = _inbox_item(request, selectors.promotion_get(pk=promotion.pk))
        response = render(request, "rollouts/approvals.html#decision-answer",
                          {"item": item, "decided": selectors.recent_decisions()})
        return trigger_client_event(response, "promotionDecided", {"promotion": promotion.pk})
    next_url = request.POST.get("next") or ""
    return redirect(next_url if next_url.startswith("/") and not next_url.startswith("//") else reverse("rollouts:approvals"))
