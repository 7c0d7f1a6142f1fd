"""Pages of the telemetry app: the live shadow-comparison panel and one pair side by side."""
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from rollouts.models import Rollout
from rolloutops.pages import htmx_partial
from rolloutops.roles import ALL_ROLES, role_required

from .selectors import pair_detail, shadow_panel_context


def _rollout(rollout_id: int) -> Rollout:
    return get_object_or_404(Rollout.objects.select_related("agent", "version"), pk=rollout_id)


@require_GET
@role_required(*ALL_ROLES)
def shadow_panel(request, rollout_id: int):
    context = shadow_panel_context(rollout=_rollout(rollout_id))
    template = "telemetry/shadow_panel.html" if htmx_partial(request) else "telemetry/shadow_page.html"
    return render(request, template, context)


@require_GET
@role_required(*ALL_ROLES)
def pair(request, rollout_id: int, request_key: str):
    rollout = _rollout(rollout_id)
    detail = pair_detail(agent_id=rollout.agent_id, request_key=request_key)
    if detail is None:
        raise Http404("no events for this request key")
    sides = [("Agent", detail["agent_event"]), ("Human", detail["human_event"])]
    return render(request, "telemetry/pair.html", {"rollout": rollout, "request_key": request_key, "sides": sides, **detail})
