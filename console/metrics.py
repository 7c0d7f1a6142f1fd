"""/metrics in the Prometheus text format, through prometheus_client: a collector that reads the
database at scrape time — per rollout its stage, traffic and guardrails, shadow agreement; the
escalation queue and SLA breaches per priority. Values print exactly (no `1.23457e+06`)."""
from __future__ import annotations

from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from escalations.models import EscalationTicket, TicketStatus
from rolloutops.audit_checkpoints import audit_checkpoint_metrics
from rollouts.gates import current_stage, stage_figures
from rollouts.guardrails import BREACHED
from rollouts.models import Rollout, RolloutState, StageMode, StageTransition

ROLLOUT = ["rollout", "agent", "version"]


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


class RolloutopsCollector:
    """Every scrape is a fresh read: nothing is counted in this process, so every web process
    answers the same and a restart loses nothing."""

    def collect(self):
        yield from self._rollouts()
        yield from self._escalations()
        yield from self._audit()
        yield from self._watch()

    def _rollouts(self):
        traffic = _gauge("rolloutops_rollout_traffic_percent", "Share of traffic routed to the agent.", ROLLOUT + ["stage"])
        index = _gauge("rolloutops_rollout_stage_index", "Position of the current stage in the plan (0 = staging).",
                       ROLLOUT + ["stage"])
        paused = _gauge("rolloutops_rollout_paused", "1 when the rollout is paused.", ROLLOUT)
        samples = _gauge("rolloutops_stage_samples", "Agent decisions observed in the current stage.", ROLLOUT + ["stage"])
        value = _gauge("rolloutops_guardrail_value", "Measured value of a guardrail metric.", ROLLOUT + ["guardrail"])
        threshold = _gauge("rolloutops_guardrail_threshold", "Threshold of a guardrail metric.", ROLLOUT + ["guardrail"])
        breached = _gauge("rolloutops_guardrail_breached", "1 when the breach is statistically significant.",
                          ROLLOUT + ["guardrail"])
        alpha = _gauge("rolloutops_guardrail_alpha", "The guardrail's share of the rollout's error budget (a probability).",
                       ROLLOUT + ["guardrail"])
        evidence = _gauge("rolloutops_guardrail_evidence_ratio",
                          "The sequential test's evidence as a share of its boundary (1 = a breach).", ROLLOUT + ["guardrail"])
        pairs = _gauge("rolloutops_shadow_pairs", "Agent/human pairs in shadow.", ROLLOUT)
        agreement = _gauge("rolloutops_shadow_agreement", "Agreement rate of agent and humans in shadow.", ROLLOUT)
        lower = _gauge("rolloutops_shadow_agreement_lower", "Wilson 95 % lower bound of shadow agreement.", ROLLOUT)
        flagged = _gauge("rolloutops_shadow_flagged_segments", "Segments flagged as systematic discrepancies.", ROLLOUT)

        open_rollouts = (Rollout.objects.filter(state__in=[RolloutState.ACTIVE, RolloutState.PAUSED])
                         .select_related("agent", "version"))
        for rollout in open_rollouts:
            base = [str(rollout.pk), rollout.agent.slug, rollout.version.version]
            active = rollout.state == RolloutState.ACTIVE
            traffic.add_metric(base + [rollout.stage_name], rollout.traffic_percent if active else 0)
            index.add_metric(base + [rollout.stage_name], rollout.stage_index)
            paused.add_metric(base, int(rollout.state == RolloutState.PAUSED))
            measured = stage_figures(rollout=rollout, stage=current_stage(rollout))
            samples.add_metric(base + [rollout.stage_name], measured["metrics"].agent_events)
            for g in measured["guardrails"]:
                if g.value is not None:  # no data is an absent sample, never a 0
                    value.add_metric(base + [g.name], g.value)
                threshold.add_metric(base + [g.name], g.threshold)
                breached.add_metric(base + [g.name], int(g.verdict == BREACHED))
                if g.alpha:
                    alpha.add_metric(base + [g.name], g.alpha)
                if g.evidence is not None:
                    evidence.add_metric(base + [g.name], g.evidence)
            shadow = measured["figures"].get("agreement")
            if rollout.mode == StageMode.SHADOW and shadow:
                pairs.add_metric(base, shadow["pairs"])
                if shadow["agreement"] is not None:
                    agreement.add_metric(base, shadow["agreement"])
                if shadow["pairs"]:
                    lower.add_metric(base, shadow["interval"][0])
                flagged.add_metric(base, len(shadow["flagged_segments"]))
        yield from (traffic, index, paused, samples, value, threshold, breached, alpha, evidence, pairs, agreement, lower, flagged)

    def _escalations(self):
        now = timezone.now()
        depth = _gauge("rolloutops_escalations_open", "Open escalation tickets (queue depth).", ["priority"])
        claimed = _gauge("rolloutops_escalations_claimed", "Escalation tickets claimed by a reviewer.", ["priority"])
        late = _gauge("rolloutops_escalations_sla_breached", "Unresolved tickets past their SLA.", ["priority"])
        rows = (EscalationTicket.objects.exclude(status=TicketStatus.RESOLVED).values("priority")
                .annotate(open=Count("id", filter=Q(status=TicketStatus.OPEN)),
                          claimed=Count("id", filter=Q(status=TicketStatus.CLAIMED)),
                          breached=Count("id", filter=Q(due_at__lt=now))))
        for row in rows.order_by("priority"):
            depth.add_metric([row["priority"]], row["open"])
            claimed.add_metric([row["priority"]], row["claimed"])
            late.add_metric([row["priority"]], row["breached"])
        yield from (depth, claimed, late)


    def _audit(self):
        # A scraper that stores these keeps a copy of each checkpoint outside the database (docs/audit.md).
        audit = audit_checkpoint_metrics()
        unsealed = _gauge("rolloutops_audit_unsealed_entries",
                          "Audit entries recorded but not yet sealed into the chain.", [])
        unsealed.add_metric([], audit["unsealed_entries"])
        yield unsealed
        entries = _gauge("rolloutops_audit_checkpoint_entries",
                         "Entries the newest keyed checkpoint of the audit chain vouches for.", [])
        stamp = _gauge("rolloutops_audit_checkpoint_timestamp_seconds",
                       "When the newest audit checkpoint was made (Unix time).", [])
        info = _gauge("rolloutops_audit_checkpoint_info", "The newest audit checkpoint; verify_audit can check it.",
                      ["seq", "head_id", "head_hash", "key_id", "at", "mac"])
        if audit["checkpoint_mac"]:
            entries.add_metric([], audit["checkpoint_entries"])
            stamp.add_metric([], audit["checkpoint_timestamp_seconds"])
            info.add_metric([str(audit["checkpoint_entries"]), str(audit["checkpoint_head_id"] or ""),
                             audit["checkpoint_head_hash"] or "", audit["checkpoint_key_id"] or "",
                             str(audit["checkpoint_at"] or ""), audit["checkpoint_mac"]], 1)
        yield from (entries, stamp, info)

    def _watch(self):
        # Evaluations that failed: each paused its rollout as inconclusive (docs/decisions.md,
        # "The watch never stops"). A counter from the history, so every process scrapes the same.
        failures = CounterMetricFamily("rolloutops_watch_errors",
                                       "Guardrail evaluations that failed and paused their rollout as inconclusive.")
        failures.add_metric([], StageTransition.objects.filter(
            action="pause", automatic=True, reason__startswith="inconclusive: the guardrails could not be evaluated").count())
        inconclusive = CounterMetricFamily("rolloutops_rollouts_inconclusive",
                                           "Automatic pauses of live stages as inconclusive (silence or errors).")
        inconclusive.add_metric([], StageTransition.objects.filter(
            action="pause", automatic=True, reason__startswith="inconclusive:").count())
        yield from (failures, inconclusive)


# A registry of our own: the process-wide default one would add this process's Python figures,
# which differ between web processes and mean nothing to whoever watches rollouts.
registry = CollectorRegistry(auto_describe=False)
registry.register(RolloutopsCollector())


def metrics_exposition() -> bytes:
    return generate_latest(registry)
