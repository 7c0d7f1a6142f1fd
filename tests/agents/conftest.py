"""Fixtures of the agents tests: a version, telemetry that satisfies every automatic check."""
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import ChecklistItem
from escalations.models import EscalationTicket
from telemetry.models import Event
from tests.factories import AgentVersionFactory


@pytest.fixture
def version(db):
    return AgentVersionFactory(agent__slug="claims-triage", version="1.4.0")


def make_events(version, n, *, start=0, latency_ms=100.0, outcome="ok", has_trace=True, input_hash="", label="approve"):
    now = timezone.now()
    Event.objects.bulk_create([
        Event(agent=version.agent, version=version, request_key=f"req-{start + i}", kind="agent", label=label,
              outcome=outcome, latency_ms=latency_ms, has_trace=has_trace, input_hash=input_hash or "",
              occurred_at=now - timedelta(seconds=i))
        for i in range(n)
    ])


def make_tickets(version, n, *, has_context=True, start=0):
    now = timezone.now()
    EscalationTicket.objects.bulk_create([
        EscalationTicket(agent=version.agent, version=version, request_key=f"esc-{start + i}", reason="other",
                         priority="P3", has_context=has_context, context={"input": "x"} if has_context else {},
                         due_at=now + timedelta(hours=4))
        for i in range(n)
    ])


def healthy_telemetry(version):
    """Enough telemetry for every automatic check to pass."""
    make_events(version, 120)
    for g in range(25):  # 25 input_hash groups of two identical decisions
        make_events(version, 2, start=10_000 + 2 * g, input_hash=f"h{g}")
    make_tickets(version, 12)


def all_pass_results(evidence="https://example.test/report"):
    return [{"item": key, "status": "pass", "evidence": evidence}
            for key in ChecklistItem.objects.filter(active=True).values_list("key", flat=True)]


@pytest.fixture
def ready_version(version, operator):
    from agents.services import evaluation_record

    healthy_telemetry(version)
    evaluation_record(actor=operator, version=version, results=all_pass_results())
    return version
