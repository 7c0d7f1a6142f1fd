"""The demo world of `manage.py seed_demo`: agents in every stage, a shadow run with one
systematically discrepant segment, a canary that degrades and rolls back, an escalation queue.

Everything goes through the product's own services (ingestion, fold, promotions, guardrails,
tickets); only the past is back-dated, so a newcomer sees days of history on a fresh install."""
from __future__ import annotations

import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from agents.models import Agent, ChecklistItem, ProductionChange
from agents.services import agent_register, evaluation_record, version_add
from escalations.models import EscalationTicket
from escalations.claims import sla_duration
from escalations.services import ticket_claim, ticket_open, ticket_resolve
from rolloutops.audit import audit_record
from rolloutops.bucketing import bucket, goes_to_candidate
from rolloutops.policy import Role
from rollouts.models import (
    PromotionRequest,
    PromotionStatus,
    Rollout,
    RolloutStage,
    RolloutState,
    StageMode,
    StageTransition,
    TransitionAction,
)
from rollouts.gates import current_stage, stage_figures
from rollouts.monitor import rollout_watch
from rollouts.promotions import promotion_request
from rollouts.services import rollout_complete, rollout_start
from telemetry.fold import events_fold
from telemetry.models import TrafficPeriod
from telemetry.periods import traffic_period_record
from telemetry.services import events_ingest

DEMO_PASSWORD = "demo-pass-2026"
PEOPLE = [
    ("olivia", Role.OPERATOR), ("oscar", Role.OPERATOR), ("rita", Role.REVIEWER), ("ravi", Role.REVIEWER),
    ("maya", Role.MANAGER), ("milo", Role.MANAGER),
]
LABELS = ("approve", "reject", "request_info")


def demo_people() -> dict:
    User = get_user_model()
    people = {}
    for username, role in PEOPLE:
        user, created = User.objects.get_or_create(username=username)
        if created or not user.has_usable_password():
            user.set_password(DEMO_PASSWORD)
            user.save()
        user.groups.add(Group.objects.get(name=role))
        people[username] = User.objects.get(pk=user.pk)
    return people


class World:
    def __init__(self, people, seed: int = 7):
        self.p = people
        self.rng = random.Random(seed)
        self.now = timezone.now()
        self.serial = 0

    # --- agents and readiness -------------------------------------------------------------

    def agent(self, slug, name, team, description, version, *, p95=2000, max_err=0.02):
        agent = agent_register(actor=self.p["olivia"], slug=slug, name=name, owner_team=team, description=description)
        v = version_add(actor=self.p["olivia"], agent=agent, version=version, notes=f"{name} {version}",
                        sla_p95_latency_ms=p95, sla_max_error_rate=max_err)
        return agent, v

    def evaluate(self, version, *, failing: dict[str, str] | None = None, evaluator="olivia"):
        failing = failing or {}
        results = []
        for key in ChecklistItem.objects.filter(active=True).values_list("key", flat=True):
            status = "fail" if key in failing else "pass"
            evidence = failing.get(key) or f"https://wiki.bank.example/agents/{version.agent.slug}/{key}"
            results.append({"item": key, "status": status, "evidence": evidence})
        evaluation_record(actor=self.p[evaluator], version=version, results=results,
                          notes="quarterly production-readiness review")

    def staging_run(self, version, *, days_ago=10, n=160):
        """Telemetry from the staging soak: repeated inputs, traces, latencies (feeds automatic checks)."""
        start = self.now - timedelta(days=days_ago)
        events = []
        for i in range(n):
            group = i % 40
            events.append(self.event(version, key=f"soak-{version.pk}-{i}", kind="agent", label=LABELS[group % 3],
                                     at=start + timedelta(minutes=i), latency=self.rng.gauss(700, 150),
                                     input_hash=f"in-{version.pk}-{group}"))
        self.ingest(events)
        for i in range(12):
            self.ticket(version, key=f"soak-esc-{version.pk}-{i}", priority="P4", resolve=True,
                        at_minutes_ago=days_ago * 1440 - i)

    # --- events ---------------------------------------------------------------------------

    def past(self, at):
        """People decide later than agents, but never after now (ingestion refuses the future)."""
        return min(at, self.now - timedelta(seconds=30))

    def event(self, version, *, key, kind, label, at, latency=None, outcome="ok", segment="", input_hash=""):
        item = {"agent": version.agent.slug, "version": version.version, "request_key": key, "kind": kind,
                "label": label, "occurred_at": at.isoformat(), "outcome": outcome}
        if segment:
            item["segment"] = segment
        if kind == "agent":
            item["latency_ms"] = max(40.0, latency or 600.0)
            item["confidence"] = round(self.rng.uniform(0.55, 0.99), 2)
            item["input_hash"] = input_hash or f"in-{key}"
            item["trace"] = {"steps": [{"tool": "lookup_customer", "ms": 120}, {"tool": "policy_check", "ms": 80},
                                       {"reasoning": f"decided {label}"}]}
        return item

    def ingest(self, events):
        for start in range(0, len(events), 5000):
            result = events_ingest(events=events[start:start + 5000])
            assert not result.errors, result.errors[:3]

    def live_traffic(self, rollout, *, start, end, n, traffic, error_rate=0.01, escalation_rate=0.03, latency=800,
                     human_share=0.3, agreement=0.95, control_ratio=3, control_error_rate=0.015, prefix="live"):
        """Requests of a live stage as routing split them: `n` in the candidate's buckets (its decisions,
        some labelled by people) and up to `control_ratio` × n of the rest, decided by the incumbent
        (its version, or people) — the control the guardrails compare with."""
        candidate, incumbent = rollout.version, rollout.incumbent_version
        span = (end - start).total_seconds()
        events, taken, controls, i = [], 0, 0, 0
        while taken < n:
            key = f"{prefix}-{rollout.pk}-{i}"
            i += 1
            at = start + timedelta(seconds=span * self.rng.random())
            roll = self.rng.random()
            if goes_to_candidate(bucket(rollout.salt, key), traffic):
                taken += 1
                outcome = "error" if roll < error_rate else ("escalated" if roll < error_rate + escalation_rate else "ok")
                label = self.rng.choice(LABELS)
                events.append(self.event(candidate, key=key, kind="agent", label=label, at=at, outcome=outcome,
                                         latency=self.rng.gauss(latency, latency * 0.25)))
                if self.rng.random() < human_share:
                    human = label if self.rng.random() < agreement else self.rng.choice([lb for lb in LABELS if lb != label])
                    events.append(self.event(candidate, key=key, kind="human", label=human,
                                             at=self.past(at + timedelta(minutes=7))))
            elif controls < n * control_ratio:
                controls += 1
                outcome = "error" if roll < control_error_rate else "ok"
                if incumbent is not None:
                    events.append(self.event(incumbent, key=key, kind="agent", label=self.rng.choice(LABELS), at=at,
                                             outcome=outcome, latency=self.rng.gauss(700, 150)))
                else:
                    events.append(self.event(candidate, key=key, kind="human", label=self.rng.choice(LABELS),
                                             at=at, outcome=outcome))
        self.ingest(events)

    def shadow_pairs(self, version, *, start, end, segments: dict[str, tuple[int, float]], prefix="shadow",
                     incumbent=None, human_share=1.0):
        """Shadow: people (or the incumbent version, when there is one) decide every request and the
        candidate decides beside them; people also decide `human_share` of the requests."""
        events = []
        span = (end - start).total_seconds()
        for segment, (count, agreement) in segments.items():
            for i in range(count):
                at = start + timedelta(seconds=span * self.rng.random())
                key = f"{prefix}-{version.pk}-{segment}-{i}"
                human = self.rng.choice(LABELS)
                if self.rng.random() < agreement:
                    agent_label = human
                else:
                    # The discrepancy is systematic: the agent rejects what people send back for more info.
                    agent_label = "reject" if human == "request_info" else self.rng.choice([lb for lb in LABELS if lb != human])
                events.append(self.event(version, key=key, kind="agent", label=agent_label, at=at, segment=segment,
                                         latency=self.rng.gauss(900, 200)))
                if incumbent is not None:
                    # The incumbent acts; it agrees with people a little more often than the candidate.
                    label = human if self.rng.random() < 0.97 else self.rng.choice([lb for lb in LABELS if lb != human])
                    events.append(self.event(incumbent, key=key, kind="agent", label=label, at=at, segment=segment,
                                             latency=self.rng.gauss(700, 150)))
                if incumbent is None or self.rng.random() < human_share:
                    events.append(self.event(version, key=key, kind="human", label=human,
                                             at=self.past(at + timedelta(minutes=self.rng.randint(3, 240))),
                                             segment=segment))
        self.ingest(events)

    # --- rollout history ------------------------------------------------------------------

    def rollout(self, version, *, started_days_ago: float, steps: list[tuple[str, float]], requester="olivia",
                approver="maya", plan=None) -> Rollout:
        """Start a rollout and replay its past promotions at the given times (days ago)."""
        started = self.now - timedelta(days=started_days_ago)
        rollout = rollout_start(actor=self.p[requester], version=version, plan=plan, reason="demo history")
        Rollout.objects.filter(pk=rollout.pk).update(created_at=started, stage_entered_at=started, updated_at=started)
        StageTransition.objects.filter(rollout=rollout).update(at=started)
        TrafficPeriod.objects.filter(rollout=rollout).update(starts_at=started)
        RolloutStage.objects.filter(rollout=rollout, position=0).update(entered_at=started)
        previous = "staging"
        for stage_name, days_ago in steps:
            at = self.now - timedelta(days=days_ago)
            stage = rollout.stages.get(name=stage_name)
            promotion = PromotionRequest.objects.create(
                rollout=rollout, from_stage=previous, to_stage=stage_name, status=PromotionStatus.APPROVED,
                requested_by=self.p[requester], requested_at=at - timedelta(minutes=40),
                decided_by=self.p[approver], decided_at=at, comment="figures look good",
                evidence={"replayed": "demo history: gates were met at the time"},
            )
            StageTransition.objects.create(
                rollout=rollout, from_stage=previous, to_stage=stage_name, from_state=RolloutState.ACTIVE, to_state=RolloutState.ACTIVE,
                traffic_percent=stage.traffic_percent, action=TransitionAction.PROMOTE, actor=self.p[approver], at=at,
                reason=f"promotion #{promotion.pk} requested by {requester}, approved by {approver}",
                evidence={"replayed": "demo history"}, promotion=promotion,
            )
            RolloutStage.objects.filter(pk=stage.pk).update(entered_at=at, entered_by=self.p[approver])
            limit = (stage.guardrails or {}).get("max_p95_latency_ms")
            traffic_period_record(agent_id=rollout.agent_id, at=at, rollout_id=rollout.pk, stage=stage.name,
                                  mode=stage.mode, active=True, traffic_percent=stage.traffic_percent, salt=rollout.salt,
                                  candidate_version_id=rollout.version_id,
                                  incumbent_version_id=rollout.incumbent_version_id,
                                  latency_limit_ms=float(limit) if limit is not None else None)
            Rollout.objects.filter(pk=rollout.pk).update(
                stage_index=stage.position, stage_name=stage.name, mode=stage.mode,
                traffic_percent=stage.traffic_percent, stage_entered_at=at, updated_at=at, revision=F("revision") + 1)
            audit_record(actor=self.p[approver], action="rollout.promote", obj=rollout,
                         after={"stage": stage_name, "replayed_at": at})
            previous = stage_name
        rollout = Rollout.objects.select_related("agent", "version", "incumbent_version").get(pk=rollout.pk)
        return rollout

    def complete(self, rollout, *, days_ago: float):
        """Complete through the service, then move the moment back into the past."""
        rollout_complete(actor=None, rollout=rollout)
        at = self.now - timedelta(days=days_ago)
        Rollout.objects.filter(pk=rollout.pk).update(ended_at=at, updated_at=at)
        StageTransition.objects.filter(rollout=rollout, action=TransitionAction.COMPLETE).update(at=at)
        ProductionChange.objects.filter(rollout_id=rollout.pk).update(at=at)
        TrafficPeriod.objects.filter(agent_id=rollout.agent_id, rollout=None, starts_at__gt=at).update(starts_at=at)
        Agent.objects.filter(pk=rollout.agent_id).update(production_since=at)

    # --- escalations ----------------------------------------------------------------------

    def ticket(self, version, *, key, priority="P3", reason=None, resolve=False, claim_by=None, at_minutes_ago=30,
               segment=""):
        reason = reason or self.rng.choice(["low_confidence", "tool_failure", "policy", "timeout", "other"])
        context = {
            "input": {"customer_id": f"C-{self.rng.randint(10000, 99999)}", "request": key,
                      "message": self.rng.choice([
                          "Please refund my duplicated card payment of 129.90 EUR from 3 Nov.",
                          "My passport was renewed, attached the new scan for KYC.",
                          "Chargeback on invoice INV-2291, merchant disputes the claim.",
                          "Address change and new IBAN, please update both accounts.",
                      ])},
            "attempts": [
                {"tool": "crm.lookup_customer", "arguments": {"customer_id": "C-…"}, "result": {"segment": "retail", "tenure_years": 6}, "duration_ms": 84},
                {"tool": "payments.search", "arguments": {"days": 30}, "result": {"matches": 2}, "duration_ms": 310},
                {"tool": "policy.evaluate", "arguments": {"rule": "refund-over-100"}, "error": "PolicyServiceTimeout after 5000 ms", "duration_ms": 5000},
            ],
            "partial_output": "Two matching debits found; refund eligibility could not be confirmed by the policy service.",
            "confidence": round(self.rng.uniform(0.2, 0.6), 2),
        }
        if segment:
            context["segment"] = segment
        ticket, _ = ticket_open(actor=self.p["olivia"], agent=version.agent, request_key=key, reason=reason,
                                priority=priority, context=context, version=version.version)
        created = self.now - timedelta(minutes=at_minutes_ago)
        EscalationTicket.objects.filter(pk=ticket.pk).update(created_at=created, due_at=created + sla_duration(priority))
        ticket.refresh_from_db()
        if claim_by or resolve:
            reviewer = self.p[claim_by or self.rng.choice(["rita", "ravi"])]
            ticket = ticket_claim(reviewer=reviewer, ticket=ticket)
            if resolve:
                ticket_resolve(reviewer=reviewer, ticket=ticket, label=self.rng.choice(LABELS),
                               notes="checked the payment ledger by hand")
        return ticket


def seed_demo(*, stdout=None) -> dict:
    say = (lambda text: stdout.write(text)) if stdout else (lambda text: None)
    people = demo_people()
    w = World(people)
    now = w.now

    with transaction.atomic():
        # 1. In production since two weeks ago (2.3.0), and its successor 2.4.0 now in canary against it.
        _, claims = w.agent("claims-triage", "Claims triage", "claims-ops",
                            "Sorts incoming insurance claims into fast-track, standard and investigate.", "2.3.0")
        w.evaluate(claims)
        w.staging_run(claims, days_ago=25)
        full_plan = [{"name": "staging", "mode": "off"},
                     {"name": "shadow", "mode": "shadow", "min_duration_s": 86400, "min_samples": 500},
                     {"name": "canary", "mode": "live", "traffic_percent": 5, "min_duration_s": 7200, "min_samples": 200},
                     {"name": "full", "mode": "live", "traffic_percent": 100, "min_duration_s": 86400}]
        r = w.rollout(claims, started_days_ago=21, steps=[("shadow", 20), ("canary", 18), ("full", 16)], plan=full_plan)
        w.live_traffic(r, start=now - timedelta(days=16), end=now - timedelta(days=14.1), n=600, traffic=100,
                       prefix="full")
        w.complete(r, days_ago=14)
        say("claims-triage 2.3.0: completed two weeks ago, in production")
        claims_next = version_add(actor=w.p["olivia"], agent=claims.agent, version="2.4.0",
                                  notes="Claims triage 2.4.0: new model, adds the fraud-signals tool",
                                  sla_p95_latency_ms=2000, sla_max_error_rate=0.02)
        w.evaluate(claims_next)
        w.staging_run(claims_next, days_ago=5)
        r = w.rollout(claims_next, started_days_ago=4, steps=[("shadow", 3), ("canary", 0.15)])
        w.shadow_pairs(claims_next, start=now - timedelta(days=3), end=now - timedelta(days=0.2), prefix="cshadow",
                       incumbent=claims, human_share=0.25,
                       segments={"motor": (420, 0.95), "home": (300, 0.94), "travel": (160, 0.95)})
        w.live_traffic(r, start=now - timedelta(minutes=210), end=now - timedelta(minutes=2), n=240, traffic=5,
                       error_rate=0.012, control_error_rate=0.012, latency=900, prefix="ccanary")
        say("claims-triage 2.4.0: canary at 5 %, compared with 2.3.0 in production")

        # 2. Progressive expansion at 25 %, healthy (people are the incumbent).
        _, refund = w.agent("refund-assistant", "Refund assistant", "payments-ops",
                            "Decides card-payment refund requests under 500 EUR.", "1.4.0", p95=2500)
        w.evaluate(refund)
        w.staging_run(refund, days_ago=12)
        r = w.rollout(refund, started_days_ago=9,
                      steps=[("shadow", 8), ("canary", 6.5), ("expand-10", 5), ("expand-25", 0.3)])
        w.shadow_pairs(refund, start=now - timedelta(days=8), end=now - timedelta(days=6.6),
                       segments={"card": (400, 0.95), "sepa": (260, 0.94), "wallet": (140, 0.93)}, prefix="rshadow")
        w.live_traffic(r, start=now - timedelta(days=6.4), end=now - timedelta(days=5.1), n=500, traffic=5,
                       prefix="rcanary")
        w.live_traffic(r, start=now - timedelta(days=4.9), end=now - timedelta(days=0.4), n=900, traffic=10,
                       prefix="r10")
        w.live_traffic(r, start=now - timedelta(hours=7), end=now - timedelta(minutes=5), n=420, traffic=25,
                       prefix="r25")
        say("refund-assistant 1.4.0: expand-25, healthy")

        # 3. Shadow with a systematically discrepant segment.
        _, kyc = w.agent("kyc-document-checker", "KYC document checker", "compliance-ops",
                         "Checks identity documents for know-your-customer onboarding.", "0.9.2", p95=4000)
        w.evaluate(kyc)
        w.staging_run(kyc, days_ago=6)
        w.rollout(kyc, started_days_ago=2, steps=[("shadow", 1.2)])
        w.shadow_pairs(kyc, start=now - timedelta(days=1.15), end=now - timedelta(minutes=10), segments={
            "passport-eu": (420, 0.96), "id-card-eu": (380, 0.95), "driving-licence": (260, 0.94),
            "passport-non-eu": (160, 0.62), "residence-permit": (18, 0.7),
        }, prefix="kshadow")
        say("kyc-document-checker 0.9.2: shadow, segment passport-non-eu disagrees with people")

        # 4. A canary that degrades and is rolled back by the guardrails.
        _, fraud = w.agent("fraud-alert-summarizer", "Fraud alert summarizer", "fraud-ops",
                           "Summarises fraud alerts and proposes a disposition.", "3.1.0", p95=3000)
        w.evaluate(fraud)
        w.staging_run(fraud, days_ago=8)
        canary = w.rollout(fraud, started_days_ago=5, steps=[("shadow", 4), ("canary", 0.1)])
        w.shadow_pairs(fraud, start=now - timedelta(days=4), end=now - timedelta(days=0.2),
                       segments={"card-fraud": (350, 0.95), "account-takeover": (250, 0.94)}, prefix="fshadow")
        w.live_traffic(canary, start=now - timedelta(minutes=140), end=now - timedelta(minutes=2), n=380, traffic=5,
                       error_rate=0.16, latency=2600, prefix="fcanary")

        # 5. A canary waiting for a manager's approval.
        _, router = w.agent("support-router", "Support router", "customer-care",
                            "Routes customer messages to the right queue with a draft answer.", "5.0.1", p95=1500)
        w.evaluate(router)
        w.staging_run(router, days_ago=7)
        pending = w.rollout(router, started_days_ago=4, steps=[("shadow", 3), ("canary", 0.15)], requester="oscar")
        w.shadow_pairs(router, start=now - timedelta(days=3), end=now - timedelta(days=0.2),
                       segments={"billing": (300, 0.95), "technical": (300, 0.96), "complaints": (120, 0.96)}, prefix="sshadow")
        w.live_traffic(pending, start=now - timedelta(minutes=200), end=now - timedelta(minutes=3), n=260, traffic=5,
                       latency=600, prefix="scanary")

        # 6. Staging, held back by the checklist.
        _, invoice = w.agent("invoice-coder", "Invoice coder", "finance-ops",
                             "Assigns general-ledger codes to supplier invoices.", "0.3.0")
        w.staging_run(invoice, days_ago=3)
        w.evaluate(invoice, failing={"security.least_privilege": "ERP service account has write access to every ledger",
                                     "performance.throughput": "load test: 40 invoices/s, SLA 100/s"})
        w.rollout(invoice, started_days_ago=1, steps=[])

        # The queue: open tickets of every priority, some past their SLA, two claimed.
        queue = [("refund-assistant", refund, "P1", 9), ("refund-assistant", refund, "P2", 75), ("support-router", router, "P3", 30),
                 ("kyc-document-checker", kyc, "P2", 20), ("kyc-document-checker", kyc, "P3", 300), ("fraud-alert-summarizer", fraud, "P1", 4),
                 ("fraud-alert-summarizer", fraud, "P2", 50), ("support-router", router, "P4", 600), ("claims-triage", claims, "P3", 100),
                 ("refund-assistant", refund, "P4", 1500), ("support-router", router, "P2", 15), ("kyc-document-checker", kyc, "P1", 22)]
        for i, (_, version, priority, minutes) in enumerate(queue):
            w.ticket(version, key=f"req-{version.agent.slug[:5]}-{4100 + i}", priority=priority, at_minutes_ago=minutes,
                     claim_by="rita" if i in (2, 6) else None, segment="passport-non-eu" if version == kyc else "")

    # After commit: fold what arrived, let the guardrails look (the fraud canary rolls back),
    # and have an operator ask to promote the support router (the managers' inbox).
    folded = events_fold(max_seconds=300)
    outcome = rollout_watch(rollout_id=canary.pk)
    say(f"fraud-alert-summarizer 3.1.0: canary degraded, guardrails answered: {outcome}")
    # Every other live rollout's guardrail tests take their first look now (the figures and the
    # evidence chart have a starting point); beat's watch carries on from there.
    for live in Rollout.objects.filter(state=RolloutState.ACTIVE, mode=StageMode.LIVE):
        stage_figures(rollout=live, stage=current_stage(live), advance=True)
    try:
        promotion_request(actor=people["oscar"], rollout=pending, reason="canary stable for 3 h, figures in")
        say("support-router 5.0.1: canary, promotion to expand-10 waits for a manager")
    except Exception as exc:  # the demo stays usable even if a gate objects
        say(f"support-router 5.0.1: promotion not requested ({exc})")
    say("invoice-coder 0.3.0: staging, not ready (least privilege, throughput)")
    return {"agents": Agent.objects.count(), "events_folded": folded,
            "tickets": EscalationTicket.objects.count(), "rollouts": Rollout.objects.count()}
