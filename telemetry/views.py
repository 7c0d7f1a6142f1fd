"""Pages of the telemetry app: the live shadow-comparison panel and one pair side by side."""
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from rollouts.models import Rollout, RolloutStage, StageMode
from rolloutops.pages import htmx_partial
from rolloutops.roles import ALL_ROLES, role_required

from .selectors import pair_detail, shadow_panel_context


def _rollout(rollout_id: int) -> Rollout:
    return get_object_or_404(Rollout.objects.select_related("agent", "version", "incumbent_version"), pk=rollout_id)


def shadow_bar(rollout: Rollout) -> float | None:
    return (RolloutStage.objects.filter(rollout=rollout, mode=StageMode.SHADOW, agreement_bar__isnull=False)
            .values_list("agreement_bar", flat=True).first())


@require_GET
@role_required(*ALL_ROLES)
def shadow_panel(request, rollout_id: int):
    rollout = _rollout(rollout_id)
    against = request.GET.get("against") or None
    if against not in (None, "human", "incumbent"):
        raise Http404("compare against human or incumbent")
    context = shadow_panel_context(rollout=rollout, bar=shadow_bar(rollout), against=against)
    template = "telemetry/shadow_panel.html" if htmx_partial(request) else "telemetry/shadow_page.html"
    return render(request, template, context)


@require_GET
@role_required(*ALL_ROLES)
def pair(request, rollout_id: int, request_key: str):
    rollout = _rollout(rollout_id)
    detail = pair_detail(agent_id=rollout.agent_id, request_key=request_key, rollout_id=rollout.pk)
    if detail is None:
        raise Http404("no events for this request key")
    candidate = detail["agent_event"]
    sides = [(f"Candidate {candidate.version.version}" if candidate and candidate.version else "Candidate", candidate),
             ("Human", detail["human_event"])]
    if detail["incumbent_event"] is not None or rollout.incumbent_version_id:
        incumbent = detail["incumbent_event"]
        sides.append((f"Incumbent {incumbent.version.version}" if incumbent else "Incumbent", incumbent))
    return render(request, "telemetry/pair.html", {"rollout": rollout, "request_key": request_key, "sides": sides, **detail})
