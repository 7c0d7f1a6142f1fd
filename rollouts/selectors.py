"""Reads of rollouts for pages and the API: shapes, lists with filters, the approvals inbox."""
from __future__ import annotations

from django.db.models import Count, Q

from agents.models import Agent

from .models import PromotionRequest, PromotionStatus, Rollout, RolloutState

OPEN_STATES = (RolloutState.ACTIVE, RolloutState.PAUSED)


def _name(user) -> str | None:
    return user.get_username() if user else None


def rollout_as_dict(rollout: Rollout) -> dict:
    stages = list(rollout.stages.all())
    history = list(rollout.transitions.select_related("actor").order_by("at", "id"))
    return {
        "id": rollout.pk,
        "agent": rollout.agent.slug,
        "version": rollout.version.version,
        "incumbent": rollout.incumbent_version.version if rollout.incumbent_version_id else None,
        "error_budget": rollout.error_budget,
        "state": rollout.state,
        "stage": rollout.stage_name,
        "traffic_percent": rollout.traffic_percent,
        "stage_entered_at": rollout.stage_entered_at,
        "started_by": _name(rollout.started_by),
        "created_at": rollout.created_at,
        "ended_at": rollout.ended_at,
        "end_reason": rollout.end_reason,
        "plan": [
            {"name": s.name, "mode": s.mode, "traffic_percent": s.traffic_percent, "min_duration_s": s.min_duration_s,
             "min_samples": s.min_samples, "agreement_bar": s.agreement_bar, "guardrails": s.guardrails,
             "inconclusive_after_s": s.inconclusive_after_s, "entered_at": s.entered_at}
            for s in stages
        ],
        "history": [
            {"at": t.at, "action": t.action, "from_stage": t.from_stage, "to_stage": t.to_stage,
             "from_state": t.from_state, "to_state": t.to_state, "traffic_percent": t.traffic_percent,
             "actor": _name(t.actor) or ("rolloutops" if t.automatic else None), "automatic": t.automatic,
             "reason": t.reason, "promotion": t.promotion_id}
            for t in history
        ],
    }


def promotion_as_dict(p: PromotionRequest) -> dict:
    return {
        "id": p.pk, "rollout": p.rollout_id, "from_stage": p.from_stage, "to_stage": p.to_stage, "status": p.status,
        "unmet": p.unmet or [], "requested_by": _name(p.requested_by), "requested_at": p.requested_at,
        "decided_by": _name(p.decided_by), "decided_at": p.decided_at, "comment": p.comment,
    }


SORTS = {
    "newest": "-created_at", "oldest": "created_at", "agent": "agent__slug", "stage": "stage_index",
    "traffic": "-traffic_percent", "state": "state", "updated": "-updated_at",
}


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
    }


def promotion_inbox():
    return (PromotionRequest.objects.filter(status=PromotionStatus.PENDING)
            .select_related("rollout__agent", "rollout__version", "requested_by").order_by("requested_at"))


def recent_decisions(limit: int = 20):
    # Decisions by people; requests a gate refused stay on their rollout's page.
    return (PromotionRequest.objects.filter(status__in=[PromotionStatus.APPROVED, PromotionStatus.REJECTED,
                                                        PromotionStatus.CANCELLED])
            .select_related("rollout__agent", "rollout__version", "requested_by", "decided_by")
            .order_by("-decided_at", "-id")[:limit])


def overview_rows() -> list[dict]:
    """One row per agent: its governing rollout (open, else latest), open tickets, SLA breaches."""
    from django.utils import timezone

    from escalations.models import EscalationTicket, TicketStatus

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
    from agents.models import AgentVersion
    from agents.readiness import version_readiness

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


def _health(rollout: Rollout | None) -> str:
    """healthy | rolled back | paused | — (the guardrail verdicts themselves are on the rollout page)."""
    if rollout is None:
        return "—"
    if rollout.state == RolloutState.ROLLED_BACK:
        return "rolled back"
    if rollout.state == RolloutState.PAUSED:
        return "paused"
    if rollout.state == RolloutState.ACTIVE and rollout.mode == "off":
        return "—"  # staging: no traffic, nothing to be healthy about yet
    return "healthy" if rollout.state in (RolloutState.ACTIVE, RolloutState.COMPLETED) else rollout.state


def overview_totals(rows: list[dict]) -> dict:
    from datetime import timedelta

    from django.utils import timezone

    since = timezone.now() - timedelta(hours=24)
    return {
        "agents": len(rows),
        "live": sum(1 for r in rows if r["rollout"] and r["rollout"].state == RolloutState.ACTIVE and r["rollout"].mode == "live"),
        "shadow": sum(1 for r in rows if r["rollout"] and r["rollout"].state == RolloutState.ACTIVE and r["rollout"].mode == "shadow"),
        "pending": PromotionRequest.objects.filter(status=PromotionStatus.PENDING).count(),
        "open_tickets": sum(r["open_tickets"] for r in rows),
        "sla_breaches": sum(r["sla_breaches"] for r in rows),
        "rollbacks_24h": Rollout.objects.filter(state=RolloutState.ROLLED_BACK, ended_at__gte=since).count(),
    }


def guardrail_history(rollout: Rollout) -> dict:
    """Hourly live-traffic figures of a rollout (from the telemetry rollups, never raw events) and
    its transitions, for the guardrail chart."""
    from telemetry.models import Arm, StageHour

    live = set(rollout.stages.filter(mode="live").values_list("name", flat=True))
    hourly = [
        {"hour": row["hour"].isoformat(), "stage": row["stage"], "events": row["decisions"],
         "errors": row["errors"], "escalations": row["escalations"], "timed": row["timed"], "slow": row["slow"]}
        for row in StageHour.objects.filter(rollout=rollout, stage__in=live, arm=Arm.CANDIDATE).order_by("hour")
        .values("hour", "stage", "decisions", "errors", "escalations", "timed", "slow")
    ]
    # Only the transitions of the live period: earlier ones would stretch the time axis.
    first_live = rollout.stages.filter(mode="live", entered_at__isnull=False).order_by("position").values_list("entered_at", flat=True).first()
    transitions = rollout.transitions.exclude(action="start").order_by("at")
    if first_live:
        transitions = transitions.filter(at__gte=first_live)
    marks = [
        {"at": t.at.isoformat(), "action": t.action,
         "text": f"{t.action} → {t.to_stage}" if t.action == "promote" else t.action}
        for t in transitions
    ]
    return {"hourly": hourly, "marks": marks}
