"""Reads of rollouts for pages and the API: one rollout or promotion, lists with filters, the
approvals inbox, the guardrail history, and what the agents pages show of an agent's rollouts."""
from __future__ import annotations

import math

from django.db.models import Count, Q
from django.urls import reverse

from agents.links import RolloutSummary
from agents.models import Agent
from rolloutops.exceptions import NotFound
from telemetry.selectors import stage_hourly

from .guardrails import budget_shares
from .models import GuardrailState, PromotionRequest, PromotionStatus, Rollout, RolloutState, StageMode, TransitionAction

OPEN_STATES = (RolloutState.ACTIVE, RolloutState.PAUSED)


def rollout_get(*, pk: int, with_stages: bool = False) -> Rollout:
    """One rollout; `with_stages` loads its stages with it, for a page that only reads them (a
    service that changes them must not be handed this copy)."""
    rows = Rollout.objects.select_related("agent", "version", "incumbent_version", "started_by")
    if with_stages:
        rows = rows.prefetch_related("stages")
    rollout = rows.filter(pk=pk).first()
    if rollout is None:
        raise NotFound(f"no rollout #{pk}")
    if rollout.version.agent_id == rollout.agent_id:
        # The version's agent is the rollout's, loaded with it: its name ("agent@version", the gates'
        # evidence and the page's title) needs no query of its own.
        rollout.version.agent = rollout.agent
    return rollout


def promotion_get(*, pk: int) -> PromotionRequest:
    promotion = (PromotionRequest.objects.select_related("rollout", "requested_by", "decided_by")
                 .filter(pk=pk).first())
    if promotion is None:
        raise NotFound(f"no promotion request #{pk}")
    return promotion


def _summary(rollout: Rollout) -> RolloutSummary:
    return RolloutSummary(
        id=rollout.pk, state=rollout.state, state_label=rollout.get_state_display(), stage=rollout.stage_name,
        traffic_percent=rollout.traffic_percent, version_id=rollout.version_id, version=rollout.version.version,
        created_at=rollout.created_at, url=reverse("rollouts:detail", args=[rollout.pk]),
    )


class AgentRollouts:
    """What the agents pages show of an agent's rollouts (registered in RolloutsConfig.ready)."""

    def open_rollouts(self, *, agent_ids: list[int]) -> dict[int, RolloutSummary]:
        rows = Rollout.objects.filter(agent_id__in=agent_ids, state__in=OPEN_STATES).select_related("version")
        return {r.agent_id: _summary(r) for r in rows}

    def recent_rollouts(self, *, agent_id: int, limit: int) -> list[RolloutSummary]:
        rows = Rollout.objects.filter(agent_id=agent_id).select_related("version").order_by("-created_at", "-id")
        return [_summary(r) for r in rows[:limit]]


SORTS = {
    "newest": "-created_at", "oldest": "created_at", "agent": "agent__slug", "stage": "stage_index",
    "traffic": "-traffic_percent", "state": "state", "updated": "-updated_at",
}


# The list's health filter: value, label.
HEALTHS = [("pending_approval", "waiting for approval"), ("paused", "paused"), ("rolled_back", "rolled back")]


def rollout_list(*, state: str = "", stage: str = "", team: str = "", health: str = "", q: str = "", sort: str = "newest"):
    qs = Rollout.objects.select_related("agent", "version", "started_by")
    if state:
        qs = qs.filter(state=state)
    if stage:
        qs = qs.filter(stage_name=stage)
    if team:
        qs = qs.filter(agent__owner_team=team)
    if q:
        qs = qs.filter(Q(agent__slug__icontains=q) | Q(agent__name__icontains=q) | Q(version__version__icontains=q))
    if health == "rolled_back":
        qs = qs.filter(state=RolloutState.ROLLED_BACK)
    elif health == "pending_approval":
        qs = qs.filter(promotions__status=PromotionStatus.PENDING)
    elif health == "paused":
        qs = qs.filter(state=RolloutState.PAUSED)
    qs = qs.annotate(pending=Count("promotions", filter=Q(promotions__status=PromotionStatus.PENDING)))
    return qs.order_by(SORTS.get(sort, "-created_at"), "-id")


def rollout_filter_choices() -> dict:
    return {
        "states": RolloutState.choices,
        "stages": list(Rollout.objects.order_by("stage_name").values_list("stage_name", flat=True).distinct()),
        "teams": list(Agent.objects.order_by("owner_team").values_list("owner_team", flat=True).distinct()),
        "sorts": list(SORTS),
        "healths": HEALTHS,
    }


def promotion_inbox():
    return (PromotionRequest.objects.filter(status=PromotionStatus.PENDING)
            .select_related("rollout__agent", "rollout__version", "requested_by").order_by("requested_at"))


def promotions_get(*, pks: list[int]) -> list[PromotionRequest]:
    return list(PromotionRequest.objects.filter(pk__in=pks)
                .select_related("rollout__agent", "rollout__version", "requested_by", "decided_by").order_by("pk"))


def recent_decisions(limit: int = 20):
    # Decisions by people; requests a gate refused stay on their rollout's page.
    return (PromotionRequest.objects.filter(status__in=[PromotionStatus.APPROVED, PromotionStatus.REJECTED,
                                                        PromotionStatus.CANCELLED])
            .select_related("rollout__agent", "rollout__version", "requested_by", "decided_by")
            .order_by("-decided_at", "-id")[:limit])


def guardrail_history(rollout: Rollout) -> dict:
    """Hourly live-traffic figures of a rollout (from the telemetry rollups, never raw events) and
    its transitions, for the guardrail chart."""
    live = [stage for stage in rollout.stages.all() if stage.mode == StageMode.LIVE]  # in position order
    hourly = stage_hourly(rollout_id=rollout.pk, stages=[stage.name for stage in live])
    if not hourly:
        return {"hourly": [], "marks": []}  # no chart is drawn: its markers are not read
    # Only the transitions of the live period: earlier ones would stretch the time axis.
    first_live = next((stage.entered_at for stage in live if stage.entered_at is not None), None)
    transitions = rollout.transitions.exclude(action=TransitionAction.START).order_by("at")
    if first_live:
        transitions = transitions.filter(at__gte=first_live)
    marks = [
        {"at": t.at.isoformat(), "action": t.action,
         "text": f"{t.action} → {t.to_stage}" if t.action == TransitionAction.PROMOTE else t.action}
        for t in transitions
    ]
    return {"hourly": hourly, "marks": marks}


def guardrail_evidence(rollout: Rollout) -> dict:
    """The watch's trace of each guardrail's evidence and the boundaries it is judged against (the chart)."""
    state = GuardrailState.objects.filter(rollout_id=rollout.pk).values_list("state", flat=True).first() or {}
    alphas = budget_shares(list(rollout.stages.all()), rollout.error_budget)
    return {"trace": state.get("trace", []), "boundaries": {key: math.log(1.0 / a) for key, a in alphas.items()}}


def segment_verdicts(rollout: Rollout) -> dict:
    """The shadow stages' final segment verdicts: stage -> {"decided_at", "flagged", "pairs"}."""
    return GuardrailState.objects.filter(rollout_id=rollout.pk).values_list("segments", flat=True).first() or {}
