"""Pages of the telemetry app: the live shadow-comparison panel and one pair side by side."""
from django.shortcuts import render
from django.views.decorators.http import require_GET

from rolloutops.exceptions import NotFound
from rolloutops.pages import htmx_partial, require_action
from rollouts.selectors import rollout_get

from .selectors import pair_detail, shadow_panel_context


@require_GET
@require_action("rollout.read")
def shadow_panel(request, rollout_id: int):
    context = shadow_panel_context(rollout=rollout_get(pk=rollout_id))
    template = "telemetry/shadow_panel.html" if htmx_partial(request) else "telemetry/shadow_page.html"
    return render(request, template, context)


@require_GET
@require_action("rollout.read")
def pair(request, rollout_id: int, request_key: str):
    rollout = rollout_get(pk=rollout_id)
    detail = pair_detail(agent_id=rollout.agent_id, request_key=request_key)
    if detail is None:
        raise NotFound("no events for this request key")
    sides = [("Agent", detail["agent_event"]), ("Human", detail["human_event"])]
    return render(request, "telemetry/pair.html", {"rollout": rollout, "request_key": request_key, "sides": sides, **detail})
