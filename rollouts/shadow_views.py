"""Pages of the shadow comparison: the panel on its own page (or as a live region), a rollout's
discrepant pairs filtered by segment and label pair, and one request's decisions side by side with
the previous and next discrepant pair of the list it was opened from."""
from __future__ import annotations

from urllib.parse import urlencode

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from rolloutops.exceptions import NotFound
from rolloutops.pages import htmx_partial, paginate, require_action
from telemetry.selectors import (
    REFERENCES, default_reference, discrepant_pair_neighbours, discrepant_pairs, pair_detail, reference_pairs,
    shadow_panel_context,
)

from . import selectors
from .models import Rollout, StageMode


def _shadow_bar(rollout: Rollout) -> float | None:
    """The first shadow stage's agreement bar (the stages as the page loaded them, in position order)."""
    return next((stage.agreement_bar for stage in rollout.stages.all()
                 if stage.mode == StageMode.SHADOW and stage.agreement_bar is not None), None)


def _against(request) -> str | None:
    against = request.GET.get("against") or None
    if against is not None and against not in REFERENCES:
        raise NotFound(f"compare against {' or '.join(REFERENCES)}, not {against!r}")
    return against


def _drill_url(rollout: Rollout):
    """The page of a rollout's discrepant pairs for some filters (segment, label pair)."""
    def url(*, against: str, **filters) -> str:
        query = {"against": against, **{k: v for k, v in filters.items() if v is not None}}
        return f"{reverse('rollouts:discrepancies', args=[rollout.pk])}?{urlencode(query)}"
    return url


def shadow_context(request, rollout: Rollout, fold_state: tuple | None = None) -> dict:
    """The shadow panel's context for a page of this rollout (?against= picks the reference);
    `fold_state`: the page's, when it has read it already (telemetry.selectors.shadow_panel_context)."""
    context = shadow_panel_context(rollout=rollout, bar=_shadow_bar(rollout), against=_against(request),
                                   drill_url=_drill_url(rollout), fold_state=fold_state,
                                   pair_url=lambda key: reverse("rollouts:pair", args=[rollout.pk, key]))
    # Segments are judged once, at the shadow stage's stabilization (docs/decisions.md, "Segments"):
    # until then what the panel shows below the rest is provisional.
    decided = [v for v in selectors.segment_verdicts(rollout).values() if v.get("decided_at")]
    context["shadow"] = {**context["shadow"], "segments_decided_at": decided[0]["decided_at"] if decided else None,
                         "segments_provisional": not decided and rollout.mode == StageMode.SHADOW}
    return context


@require_GET
@require_action("rollout.read")
def shadow_panel(request, rollout_id: int):
    """The shadow comparison on its own page, or its live panel for htmx."""
    rollout = selectors.rollout_get(pk=rollout_id)
    context = shadow_context(request, rollout)
    template = "rollouts/shadow_panel.html" if htmx_partial(request) else "rollouts/shadow_page.html"
    return render(request, template, context)


# The filters of the discrepant pairs (telemetry.selectors.discrepant_pairs). A filter present with an
# empty value is kept: segment "" is the requests that named no segment.
PAIR_FILTERS = ("segment", "agent_label", "reference_label")


def _pair_filters(request) -> dict:
    return {key: request.GET[key] for key in PAIR_FILTERS if key in request.GET}


def _reference(request, rollout: Rollout) -> str:
    against = _against(request)
    return against or default_reference(reference_pairs(rollout_id=rollout.pk))


@require_GET
@require_action("rollout.read")
def discrepancies(request, rollout_id: int):
    """Every discrepant pair of a rollout against one reference, filtered by segment and label pair,
    newest first: what a flagged segment or a cell of the confusion matrix stands for."""
    rollout = selectors.rollout_get(pk=rollout_id)
    against = _reference(request, rollout)
    filters = _pair_filters(request)
    page = paginate(request, discrepant_pairs(rollout_id=rollout.pk, reference=against, **filters), per_page=50)
    query = urlencode({"against": against, **filters})
    return render(request, "rollouts/discrepancies.html", {
        "rollout": rollout, "against": against, "filters": filters, "page": page, "query": query,
        "all_url": _drill_url(rollout)(against=against),
    })


@require_GET
@require_action("rollout.read")
def pair(request, rollout_id: int, request_key: str):
    """One request: the candidate's decision beside the human's and the incumbent version's; with
    the previous and next discrepant pairs of the list it was opened from."""
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
    against = _reference(request, rollout)
    filters = _pair_filters(request)
    query = urlencode({"against": against, **filters})
    neighbours = discrepant_pair_neighbours(rollout_id=rollout.pk, reference=against, request_key=request_key, **filters)
    return render(request, "rollouts/pair.html", {"rollout": rollout, "request_key": request_key, "sides": sides,
                                                  "against": against, "filters": filters, "query": query,
                                                  "neighbours": neighbours, **detail})
