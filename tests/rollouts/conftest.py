"""Fixtures for rollouts: a version that passes the readiness gate, rollouts on short plans."""
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import ChecklistItem
from agents.services import evaluation_record
from escalations.models import EscalationTicket
from rollouts.services import rollout_start
from telemetry.models import Event
from tests.factories import AgentVersionFactory


def make_ready(version, evaluator):
    """Every checklist item passes, and the version's own telemetry clears every automatic check."""
    evaluation_record(actor=evaluator, version=version, results=[
        {"item": key, "status": "pass", "evidence": "https://wiki.example/evidence"}
        for key in ChecklistItem.objects.filter(active=True).values_list("key", flat=True)
    ])
    now = timezone.now() - timedelta(days=1)
    Event.objects.bulk_create([
        Event(agent=version.agent, version=version, request_key=f"staging-{version.pk}-{i}", kind="agent", label="approve",
              outcome="ok", latency_ms=120, input_hash=f"h{i % 24}", trace={"steps": ["lookup"]}, has_trace=True,
              occurred_at=now)
        for i in range(120)
    ])
    EscalationTicket.objects.bulk_create([
        EscalationTicket(agent=version.agent, version=version, request_key=f"esc-{version.pk}-{i}", reason="low_confidence",
                         priority="P3", status="resolved", context={"input": "x", "attempts": [{"tool": "t"}]},
                         has_context=True, due_at=now + timedelta(hours=4))
        for i in range(10)
    ])
    return version


# Zero-length stabilizations and sample minimums: promotion depends on the other gates only.
FAST_PLAN = [
    {"name": "staging", "mode": "off"},
    {"name": "shadow", "mode": "shadow", "agreement_bar": 0.0},
    {"name": "canary", "mode": "live", "traffic_percent": 5},
    {"name": "expand-10", "mode": "live", "traffic_percent": 10},
    {"name": "expand-25", "mode": "live", "traffic_percent": 25},
    {"name": "expand-50", "mode": "live", "traffic_percent": 50},
    {"name": "full", "mode": "live", "traffic_percent": 100},
]


@pytest.fixture
def ready_version(operator):
    return make_ready(AgentVersionFactory(), operator)


@pytest.fixture
def fast_rollout(ready_version, operator):
    return rollout_start(actor=operator, version=ready_version, plan=FAST_PLAN)
