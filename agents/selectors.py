"""Reads of the agents app: agents with their latest version, open rollout and readiness."""
from __future__ import annotations

from functools import cached_property

from django.db.models import Prefetch, Q

from rolloutops.exceptions import NotFound

from .links import RolloutSummary, rollout_reader
from .models import Agent, AgentVersion, ChecklistItem, ProductionChange
from .readiness import Readiness, ReadinessStatus, version_readiness

READINESS_FILTERS = tuple(ReadinessStatus.values)


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


def agent_rollouts(*, agent: Agent, limit: int = 20) -> list[RolloutSummary]:
    """Recent rollouts of the agent, newest first."""
    return rollout_reader().recent_rollouts(agent_id=agent.pk, limit=limit)


def agent_versions(*, agent: Agent) -> list[AgentVersion]:
    return list(agent.versions.select_related("agent").order_by("-created_at", "-id"))


def open_rollout(*, agent: Agent) -> RolloutSummary | None:
    """The agent's rollout that holds (or may regain) traffic."""
    return rollout_reader().open_rollouts(agent_ids=[agent.pk]).get(agent.pk)


def agents_with_latest_version(*, q: str = "", team: str = "") -> list[tuple[Agent, str | None]]:
    """The API's list: agents by slug or name, each with its newest version's name."""
    agents = Agent.objects.all()
    if q:
        agents = agents.filter(Q(slug__icontains=q) | Q(name__icontains=q))
    if team:
        agents = agents.filter(owner_team=team)
    latest = {}
    for agent_id, version in (AgentVersion.objects.filter(agent__in=agents).order_by("agent_id", "created_at", "id")
                              .values_list("agent_id", "version")):
        latest[agent_id] = version  # ascending, so the last one seen is the newest
    return [(agent, latest.get(agent.pk)) for agent in agents.order_by("slug")]


class AgentRow:
    """One line of the agents list. Readiness is worked out when first read, so a page of 25
    rows costs 25 verdicts however many agents match (unless the list is filtered by it)."""

    def __init__(self, *, agent: Agent, latest: AgentVersion | None, rollout: RolloutSummary | None):
        self.agent, self.latest, self.rollout = agent, latest, rollout

    @cached_property
    def readiness(self) -> Readiness | None:
        return version_readiness(version=self.latest, cached=True) if self.latest else None

    @property
    def readiness_status(self) -> str:
        if self.readiness is None:
            return ReadinessStatus.NO_VERSION
        return self.readiness.status


def agent_rows(*, q: str = "", team: str = "", readiness: str = "") -> list[AgentRow]:
    """The agents list: search by slug/name/description, filter by team and readiness of the
    latest version. Readiness is computed per agent (a handful of queries each)."""
    agents = Agent.objects.all()
    if q:
        agents = agents.filter(Q(slug__icontains=q) | Q(name__icontains=q) | Q(description__icontains=q))
    if team:
        agents = agents.filter(owner_team=team)
    agents = list(agents.prefetch_related(
        Prefetch("versions", queryset=AgentVersion.objects.order_by("-created_at", "-id"), to_attr="versions_newest"),
    ).order_by("slug"))
    rollouts = rollout_reader().open_rollouts(agent_ids=[agent.pk for agent in agents])
    rows = []
    for agent in agents:
        latest = agent.versions_newest[0] if agent.versions_newest else None
        row = AgentRow(agent=agent, latest=latest, rollout=rollouts.get(agent.pk))
        if readiness and row.readiness_status != readiness:
            continue
        rows.append(row)
    return rows


def owner_teams() -> list[str]:
    return list(Agent.objects.order_by("owner_team").values_list("owner_team", flat=True).distinct())


def checklist_items(*, include_inactive: bool = False):
    qs = ChecklistItem.objects.all() if include_inactive else ChecklistItem.objects.filter(active=True)
    return qs.order_by("dimension", "position", "key")


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
