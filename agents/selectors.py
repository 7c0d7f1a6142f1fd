"""Reads of the agents app: agents with their latest version, open rollout and readiness."""
from __future__ import annotations

from functools import cached_property

from django.db.models import Prefetch, Q
from django.shortcuts import get_object_or_404

from rolloutops.exceptions import NotFound

from .models import Agent, AgentVersion, ChecklistItem, Dimension, ProductionChange
from .readiness import Readiness, version_readiness

OPEN_ROLLOUT_STATES = ("active", "paused")
READINESS_FILTERS = ("ready", "not-ready", "no-version")


def agent_get(*, slug: str) -> Agent:
    agent = Agent.objects.select_related("production_version").filter(slug=slug).first()
    if agent is None:
        raise NotFound(f"no agent {slug!r}")
    return agent


def version_get(*, agent: Agent, version: str) -> AgentVersion:
    row = AgentVersion.objects.select_related("agent").filter(agent=agent, version=version).first()
    if row is None:
        raise NotFound(f"agent {agent.slug!r} has no version {version!r}")
    return row


def agent_get_or_404(*, slug: str) -> Agent:
    return get_object_or_404(Agent.objects.select_related("production_version"), slug=slug)


def version_get_or_404(*, slug: str, version: str) -> AgentVersion:
    return get_object_or_404(AgentVersion.objects.select_related("agent"), agent__slug=slug, version=version)


def agent_rollouts(*, agent: Agent, limit: int = 20) -> list:
    """Recent rollouts of the agent, newest first, each with the URL of its page."""
    from rollouts.models import Rollout

    rows = list(Rollout.objects.filter(agent=agent).select_related("version").order_by("-created_at", "-id")[:limit])
    for r in rows:
        r.url = rollout_url(r.pk)
    return rows


def agent_versions(*, agent: Agent) -> list[AgentVersion]:
    return list(agent.versions.select_related("agent").order_by("-created_at", "-id"))


def open_rollout(*, agent: Agent) -> dict | None:
    """The agent's rollout that holds (or may regain) traffic, in the API's short shape."""
    from rollouts.models import Rollout

    rollout = (Rollout.objects.filter(agent=agent, state__in=OPEN_ROLLOUT_STATES)
               .values("id", "state", "stage_name", "traffic_percent", "version_id", "version__version").first())
    if rollout is None:
        return None
    return {"id": rollout["id"], "state": rollout["state"], "stage": rollout["stage_name"],
            "traffic_percent": rollout["traffic_percent"], "version_id": rollout["version_id"],
            "version": rollout["version__version"]}


def rollout_url(rollout_id: int) -> str:
    # The rollouts app serves this page; building the string keeps agents free of its URL names.
    return f"/rollouts/{rollout_id}/"


class AgentRow:
    """One line of the agents list. Readiness is worked out when first read, so a page of 25
    rows costs 25 verdicts however many agents match (unless the list is filtered by it)."""

    def __init__(self, *, agent: Agent, latest: AgentVersion | None, rollout: dict | None):
        self.agent, self.latest, self.rollout = agent, latest, rollout

    @cached_property
    def readiness(self) -> Readiness | None:
        return version_readiness(version=self.latest, cached=True) if self.latest else None

    @property
    def readiness_status(self) -> str:
        if self.readiness is None:
            return "no-version"
        return self.readiness.status


def agent_rows(*, q: str = "", team: str = "", readiness: str = "") -> list[AgentRow]:
    """The agents list: search by slug/name/description, filter by team and readiness of the
    latest version. Readiness is computed per agent (a handful of queries each)."""
    from rollouts.models import Rollout

    agents = Agent.objects.all()
    if q:
        agents = agents.filter(Q(slug__icontains=q) | Q(name__icontains=q) | Q(description__icontains=q))
    if team:
        agents = agents.filter(owner_team=team)
    agents = agents.prefetch_related(
        Prefetch("versions", queryset=AgentVersion.objects.order_by("-created_at", "-id"), to_attr="versions_newest"),
        Prefetch("rollouts", queryset=Rollout.objects.filter(state__in=OPEN_ROLLOUT_STATES), to_attr="open_rollouts"),
    ).order_by("slug")
    rows = []
    for agent in agents:
        latest = agent.versions_newest[0] if agent.versions_newest else None
        open_ = agent.open_rollouts[0] if agent.open_rollouts else None
        rollout = None if open_ is None else {
            "id": open_.pk, "state": open_.state, "stage": open_.stage_name,
            "traffic_percent": open_.traffic_percent, "url": rollout_url(open_.pk),
        }
        row = AgentRow(agent=agent, latest=latest, rollout=rollout)
        if readiness and row.readiness_status != readiness:
            continue
        rows.append(row)
    return rows


def owner_teams() -> list[str]:
    return list(Agent.objects.order_by("owner_team").values_list("owner_team", flat=True).distinct())


def checklist_items(*, include_inactive: bool = False):
    qs = ChecklistItem.objects.all() if include_inactive else ChecklistItem.objects.filter(active=True)
    return qs.order_by("dimension", "position", "key")


def dimension_choices() -> list[tuple[str, str]]:
    return list(Dimension.choices)


def production_lineage(*, agent: Agent, limit: int = 50) -> list[dict]:
    """Which version was in production when, and why it left: newest first, from the changes."""
    changes = list(ProductionChange.objects.filter(agent=agent).select_related("from_version", "to_version", "actor")
                   .order_by("-at", "-id")[:limit])
    rows = []
    until = None
    for change in changes:  # newest first: each change ends the reign of its from_version
        rows.append({
            "version": change.to_version.version if change.to_version else None,
            "since": change.at, "until": until, "how": change.kind, "rollout": change.rollout_id,
            "by": change.actor.get_username() if change.actor else None, "reason": change.reason,
        })
        until = change.at
    if changes:
        first = changes[-1]
        rows.append({"version": first.from_version.version if first.from_version else None, "since": None,
                     "until": until, "how": "initial", "rollout": None, "by": None, "reason": ""})
    return rows
