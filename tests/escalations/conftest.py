"""Fixtures for the escalations tests: an agent, a runtime's client, tickets opened through the service."""
import itertools

import pytest
from django.db import connection
from django.utils import timezone

from escalations.services import ticket_open
from telemetry.models import Event, EventKind
from tests.factories import AgentFactory, AgentVersionFactory

# The decisions the tests' agent makes: a resolution picks one of them (or confirms a new label).
AGENT_LABELS = ("approve", "deny", "refer")


def agent_decides(agent, labels=AGENT_LABELS, version="0.9.0"):
    """The agent has reported decisions with these labels (what resolving its tickets offers)."""
    decided_by = AgentVersionFactory(agent=agent, version=version)
    Event.objects.bulk_create([Event(agent=agent, version=decided_by, request_key=f"seen-{label}", kind=EventKind.AGENT,
                                     label=label, occurred_at=timezone.now()) for label in labels])

_keys = itertools.count(1)


def sample_context(**overrides) -> dict:
    context = {
        "input": {"claim_id": "C-1042", "text": "Windscreen cracked on the motorway, photo attached"},
        "attempts": [
            {"tool": "policy_lookup", "arguments": {"policy": "P-77"}, "result": {"cover": "comprehensive"},
             "duration_ms": 84},
            {"tool": "damage_estimator", "arguments": {"photo": "img-1.jpg"}, "error": "model timeout after 30s",
             "duration_ms": 30000},
        ],
        "partial_output": "Covered; estimate unavailable",
        "confidence": 0.41,
    }
    context.update(overrides)
    return context


@pytest.fixture
def agent(db):
    agent = AgentFactory(slug="claims-triage")
    agent_decides(agent)
    return agent


@pytest.fixture
def version(agent):
    return AgentVersionFactory(agent=agent, version="1.4.0")


@pytest.fixture
def runtime_client(operator, api_client_for):
    return api_client_for(operator, "escalations:write")


@pytest.fixture
def make_ticket(agent, operator):
    """make_ticket(priority="P2", reason="low_confidence", **kw) → an open ticket, opened like a runtime would."""

    def make(*, priority="P2", reason="low_confidence", request_key=None, context=None, for_agent=None, **kw):
        ticket, _ = ticket_open(actor=operator, agent=for_agent or agent, request_key=request_key or f"req-{next(_keys)}",
                                reason=reason, priority=priority,
                                context=sample_context() if context is None else context, **kw)
        return ticket

    return make


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (real row locks and parallel connections)")
