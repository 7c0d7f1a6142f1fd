"""GET /metrics: Prometheus text format — per rollout its stage, traffic and guardrails, shadow
agreement, the escalation queue and SLA breaches (SPEC 8). Scraped with a bearer token."""
from __future__ import annotations

from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from .audit_checkpoints import audit_checkpoint_metrics
from .tokens import token_authenticate


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


class Exposition:
    def __init__(self):
        self.lines: list[str] = []
        self.declared: set[str] = set()

    def add(self, name: str, help_text: str, value, kind: str = "gauge", **labels) -> None:
        if name not in self.declared:
            self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            self.declared.add(name)
        if value is None:
            return
        self.lines.append(f"{name}{_labels(**labels) if labels else ''} {float(value):g}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def metrics_exposition() -> str:
    from django.db.models import Count, Q

    from escalations.models import EscalationTicket, TicketStatus
    from rollouts.gates import current_stage, stage_figures
    from rollouts.models import Rollout, RolloutState, StageMode

    out = Exposition()
    for rollout in Rollout.objects.filter(state__in=[RolloutState.ACTIVE, RolloutState.PAUSED]).select_related("agent", "version"):
        base = {"rollout": rollout.pk, "agent": rollout.agent.slug, "version": rollout.version.version}
        out.add("rolloutops_rollout_traffic_percent", "Share of traffic routed to the agent.",
                rollout.traffic_percent if rollout.state == RolloutState.ACTIVE else 0, **base, stage=rollout.stage_name)
        out.add("rolloutops_rollout_stage_index", "Position of the current stage in the plan (0 = staging).",
                rollout.stage_index, **base, stage=rollout.stage_name)
        out.add("rolloutops_rollout_paused", "1 when the rollout is paused.", int(rollout.state == RolloutState.PAUSED), **base)
        measured = stage_figures(rollout=rollout, stage=current_stage(rollout))
        out.add("rolloutops_stage_samples", "Agent decisions observed in the current stage.",
                measured["metrics"].agent_events, **base, stage=rollout.stage_name)
        for g in measured["guardrails"]:
            out.add("rolloutops_guardrail_value", "Measured value of a guardrail metric.", g.value, **base, guardrail=g.name)
            out.add("rolloutops_guardrail_threshold", "Threshold of a guardrail metric.", g.threshold, **base, guardrail=g.name)
            out.add("rolloutops_guardrail_breached", "1 when the breach is statistically significant.",
                    int(g.verdict == "breached"), **base, guardrail=g.name)
        agreement = measured["figures"].get("agreement")
        if rollout.mode == StageMode.SHADOW and agreement:
            out.add("rolloutops_shadow_pairs", "Agent/human pairs in shadow.", agreement["pairs"], **base)
            out.add("rolloutops_shadow_agreement", "Agreement rate of agent and humans in shadow.", agreement["agreement"], **base)
            out.add("rolloutops_shadow_agreement_lower", "Wilson 95 % lower bound of shadow agreement.",
                    agreement["interval"][0] if agreement["pairs"] else None, **base)
            out.add("rolloutops_shadow_flagged_segments", "Segments flagged as systematic discrepancies.",
                    len(agreement["flagged_segments"]), **base)
    now = timezone.now()
    rows = (EscalationTicket.objects.exclude(status=TicketStatus.RESOLVED).values("priority")
            .annotate(open=Count("id", filter=Q(status=TicketStatus.OPEN)), claimed=Count("id", filter=Q(status=TicketStatus.CLAIMED)),
                      breached=Count("id", filter=Q(due_at__lt=now))))
    out.add("rolloutops_escalations_open", "Open escalation tickets (queue depth).", None)
    out.add("rolloutops_escalations_claimed", "Escalation tickets claimed by a reviewer.", None)
    out.add("rolloutops_escalations_sla_breached", "Unresolved tickets past their SLA.", None)
    for row in rows:
        out.add("rolloutops_escalations_open", "", row["open"], priority=row["priority"])
        out.add("rolloutops_escalations_claimed", "", row["claimed"], priority=row["priority"])
        out.add("rolloutops_escalations_sla_breached", "", row["breached"], priority=row["priority"])
    _add_audit_checkpoint(out)
    return out.text()


def _add_audit_checkpoint(out: Exposition) -> None:
    # A scraper that stores these keeps a copy of each checkpoint outside the database (docs/audit.md).
    audit = audit_checkpoint_metrics()
    out.add("rolloutops_audit_unsealed_entries", "Audit entries recorded but not yet sealed into the chain.",
            audit["unsealed_entries"])
    out.add("rolloutops_audit_checkpoint_entries", "Entries the newest keyed checkpoint of the audit chain vouches for.",
            audit["checkpoint_entries"])
    out.add("rolloutops_audit_checkpoint_timestamp_seconds", "When the newest audit checkpoint was made (Unix time).",
            audit["checkpoint_timestamp_seconds"])
    if audit["checkpoint_mac"]:
        out.add("rolloutops_audit_checkpoint_info", "The newest audit checkpoint; verify_audit can check it.", 1,
                seq=audit["checkpoint_entries"], head_id=audit["checkpoint_head_id"] or "",
                head_hash=audit["checkpoint_head_hash"], key_id=audit["checkpoint_key_id"],
                at=audit["checkpoint_at"], mac=audit["checkpoint_mac"])


@require_GET
def metrics(request):
    """Any valid API token (a read-only `user`-scoped one for Prometheus), or a signed-in person."""
    header = request.headers.get("Authorization", "")
    token = token_authenticate(header[7:].strip()) if header.lower().startswith("bearer ") else None
    if token is None and not request.user.is_authenticated:
        response = HttpResponse("authentication required: Authorization: Bearer <token>\n", status=401,
                                content_type="text/plain")
        response["WWW-Authenticate"] = "Bearer"
        return response
    return HttpResponse(metrics_exposition(), content_type="text/plain; version=0.0.4; charset=utf-8")
