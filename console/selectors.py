"""Reads of the overview: one row per agent across every app — its governing rollout, readiness,
open escalations and SLA breaches — and the totals above the table."""
from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Count, Q
from django.utils import timezone

from agents.models import Agent, AgentVersion
from agents.readiness import version_readiness
from escalations.models import EscalationTicket, TicketStatus
from rollouts.models import PromotionRequest, PromotionStatus, Rollout, RolloutState, StageMode
from rollouts.selectors import OPEN_STATES


class Health(models.TextChoices):
    """An agent's health on the overview (the guardrail verdicts themselves are on the rollout page)."""

    HEALTHY = "healthy", "healthy"
    ROLLED_BACK = "rolled_back", "rolled back"
    PAUSED = "paused", "paused"
    NONE = "none", "—"


def overview_rows() -> list[dict]:
    """One row per agent: its governing rollout (open, else latest), open tickets, SLA breaches."""
    agents = list(Agent.objects.select_related("production_version").order_by("slug"))
    latest: dict[int, Rollout] = {}
    for r in Rollout.objects.select_related("version").order_by("agent_id", "-created_at"):
        current = latest.get(r.agent_id)
        if current is None or (current.state not in OPEN_STATES and r.state in OPEN_STATES):
            latest[r.agent_id] = r
    now = timezone.now()
    tickets = {
        row["agent_id"]: row
        for row in EscalationTicket.objects.exclude(status=TicketStatus.RESOLVED).values("agent_id").annotate(
            open=Count("id"), breached=Count("id", filter=Q(due_at__lt=now)))
    }
    pending = set(PromotionRequest.objects.filter(status=PromotionStatus.PENDING).values_list("rollout_id", flat=True))
    newest_versions: dict[int, AgentVersion] = {}
    for v in AgentVersion.objects.select_related("agent").order_by("agent_id", "-created_at", "-id"):
        newest_versions.setdefault(v.agent_id, v)
    rows = []
    for agent in agents:
        rollout = latest.get(agent.pk)
        t = tickets.get(agent.pk, {})
        version = rollout.version if rollout else newest_versions.get(agent.pk)
        readiness = version_readiness(version=version, cached=True) if version else None
        rows.append({
            "agent": agent, "rollout": rollout, "version": version, "readiness": readiness,
            "open_tickets": t.get("open", 0), "sla_breaches": t.get("breached", 0),
            "pending_promotion": bool(rollout and rollout.pk in pending),
            "health": _health(rollout),
        })
    return rows


def _health(rollout: Rollout | None) -> Health:
    if rollout is None:
        return Health.NONE
    if rollout.state == RolloutState.ROLLED_BACK:
        return Health.ROLLED_BACK
    if rollout.state == RolloutState.PAUSED:
        return Health.PAUSED
    if rollout.state == RolloutState.ACTIVE and rollout.mode == StageMode.OFF:
        return Health.NONE  # staging: no traffic, nothing to be healthy about yet
    return Health.HEALTHY


def _running(rows: list[dict], mode: str) -> int:
    return sum(1 for r in rows if r["rollout"] and r["rollout"].state == RolloutState.ACTIVE and r["rollout"].mode == mode)


def overview_totals(rows: list[dict]) -> dict:
    since = timezone.now() - timedelta(hours=24)
    return {
        "agents": len(rows),
        "live": _running(rows, StageMode.LIVE),
        "shadow": _running(rows, StageMode.SHADOW),
        "pending": PromotionRequest.objects.filter(status=PromotionStatus.PENDING).count(),
        "open_tickets": sum(r["open_tickets"] for r in rows),
        "sla_breaches": sum(r["sla_breaches"] for r in rows),
        "rollbacks_24h": Rollout.objects.filter(state=RolloutState.ROLLED_BACK, ended_at__gte=since).count(),
    }
