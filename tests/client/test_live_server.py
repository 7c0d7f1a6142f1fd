"""The client against the real server (Django's live server) for the endpoints it has: events,
escalations. A fault-injecting proxy sits in between; it serves the routing snapshot itself (the
real snapshot endpoint is exercised in test_live_routing.py)."""
import pytest
from rolloutops_client import Forbidden, Rejected

from escalations.models import EscalationTicket, TicketEvent
from rolloutops.tokens import token_issue
from telemetry.models import Event
from tests.factories import AgentVersionFactory, UserFactory

from .conftest import snapshot_body
from .servers import ESCALATIONS, EVENTS, Fault, FakeRolloutops

pytestmark = pytest.mark.django_db(transaction=True)

RUNTIME_SCOPES = "route:read,events:write,escalations:write"


@pytest.fixture
def version():
    return AgentVersionFactory(agent__slug="claims-triage", version="2.3.0")


@pytest.fixture
def runtime_token():
    operator = UserFactory(username="runtime-owner", roles=["operator"])
    return token_issue(user=operator, scopes=RUNTIME_SCOPES, name="claims-runtime")[1]


@pytest.fixture
def proxy(live_server, version):
    routing = snapshot_body(**{"claims-triage": {"incumbent": {"handler": "agent", "version": "2.3.0"},
                                                 "rollout": None}})
    with FakeRolloutops(routing=routing, upstream=live_server.url) as server:
        yield server


@pytest.fixture
def client(proxy, runtime_token, make_client):
    made = make_client(proxy.url, token=runtime_token, background=False, backoff_base_s=0.01, backoff_max_s=0.05)
    made.refresh()
    return made


def _record(client, n, **extra):
    for i in range(n):
        client.record(agent="claims-triage", request_key=f"req-{i}", label="approve", version="2.3.0", **extra)


def test_a_batch_stored_but_answered_503_is_resent_and_counted_once(client, proxy):
    proxy.fail_next(EVENTS, Fault(status=503, after=True))
    _record(client, 20, confidence=0.9)
    assert client.flush(30)
    assert [p.answered for p in proxy.requests_to(EVENTS)] == [503, 200]
    assert Event.objects.filter(agent__slug="claims-triage").count() == 20
    stats = client.stats().telemetry
    assert (stats.accepted, stats.duplicates, stats.retries, stats.failed) == (0, 20, 1, 0)


def test_a_batch_refused_with_503_before_the_server_saw_it_is_stored_on_the_retry(client, proxy):
    proxy.fail_next(EVENTS, Fault(status=503, headers={"Retry-After": "0"}), Fault(drop=True))
    _record(client, 5)
    assert client.flush(30)
    assert [p.answered for p in proxy.requests_to(EVENTS)] == [503, None, 200]
    assert Event.objects.count() == 5
    assert client.stats().telemetry.accepted == 5


def test_the_servers_per_event_errors_are_counted_not_retried(client, proxy):
    client.record(agent="claims-triage", request_key="good", label="approve", version="2.3.0")
    client.record(agent="claims-triage", request_key="bad", label="approve", version="9.9.9")
    assert client.flush(30)
    assert len(proxy.requests_to(EVENTS)) == 1
    assert list(Event.objects.values_list("request_key", flat=True)) == ["good"]
    stats = client.stats().telemetry
    assert (stats.accepted, stats.rejected) == (1, 1)


def test_a_decision_that_raises_is_recorded_as_an_error_with_the_routed_version(client):
    with pytest.raises(RuntimeError, match="policy service down"):
        with client.decision("claims-triage", "req-err", segment="eu") as d:
            assert (d.route.handler, d.route.version) == ("agent", "2.3.0")
            d.step(tool="lookup_policy", arguments={"id": 7}, error="timeout after 2 s")
            raise RuntimeError("policy service down")
    assert client.flush(30)
    event = Event.objects.get(request_key="req-err")
    assert (event.kind, event.outcome, event.label, event.version.version, event.segment) == (
        "agent", "error", "error", "2.3.0", "eu")
    assert event.latency_ms is not None and event.latency_ms >= 0
    assert event.trace == {"steps": [{"tool": "lookup_policy", "arguments": {"id": 7}, "error": "timeout after 2 s"}]}


def test_a_decision_records_its_label_confidence_and_steps(client):
    with client.decision("claims-triage", "req-ok") as d:
        d.step(tool="lookup_policy", arguments={"id": 7}, result={"active": True}, duration_ms=3.5)
        d.label, d.confidence = "approve", 0.92
    assert client.flush(30)
    event = Event.objects.get(request_key="req-ok")
    assert (event.outcome, event.label, event.confidence, event.has_trace) == ("ok", "approve", 0.92, True)
    assert event.trace["steps"][0]["result"] == {"active": True}


def test_escalate_opens_one_ticket_and_a_retry_returns_the_same_one(client):
    ticket = client.escalate(agent="claims-triage", request_key="req-9", reason="low_confidence", priority="P2",
                             context={"input": "claim text", "attempts": [{"tool": "classify", "result": "approve"}],
                                      "confidence": 0.41}, version="2.3.0")
    assert ticket.created and (ticket.status, ticket.priority, ticket.version) == ("open", "P2", "2.3.0")
    again = client.escalate(agent="claims-triage", request_key="req-9", reason="low_confidence", priority="P2")
    assert again.id == ticket.id and not again.created
    stored = EscalationTicket.objects.get()
    assert stored.has_context and stored.context["attempts"] == [{"tool": "classify", "result": "approve"}]


@pytest.mark.parametrize("fault", [Fault(status=503), Fault(drop=True), Fault(status=502, after=True),
                                   Fault(drop=True, after=True)])
def test_escalate_retries_network_errors_and_5xx_without_a_second_ticket(client, proxy, fault):
    proxy.fail_next(ESCALATIONS, fault)
    ticket = client.escalate(agent="claims-triage", request_key="req-10", reason="tool_failure", priority="P1")
    assert len(proxy.requests_to(ESCALATIONS)) == 2
    assert EscalationTicket.objects.get().pk == ticket.id
    assert TicketEvent.objects.filter(ticket_id=ticket.id).count() == 1
    # When the first attempt reached the server, the retry finds the ticket it opened.
    assert ticket.created is not fault.after


def test_escalate_raises_on_what_retrying_cannot_fix(client, proxy, live_server):
    with pytest.raises(Rejected) as invalid:
        client.escalate(agent="claims-triage", request_key="k" * 201, reason="other", priority="P3")
    assert invalid.value.status == 422
    assert len(proxy.requests_to(ESCALATIONS)) == 1
    operator = UserFactory(username="events-only", roles=["operator"])
    raw = token_issue(user=operator, scopes="events:write", name="events-only")[1]
    from rolloutops_client import Client

    with Client(proxy.url, raw, background=False, flush_at_exit_s=None) as narrow:
        with pytest.raises(Forbidden):
            narrow.escalate(agent="claims-triage", request_key="k1", reason="other", priority="P3")


def test_a_decision_escalated_on_low_confidence_sends_its_steps_as_attempts(client):
    with client.decision("claims-triage", "req-low") as d:
        d.step(tool="classify", arguments={"text": "…"}, result={"label": "deny", "p": 0.41})
        d.label, d.confidence = "deny", 0.41
        if d.confidence < 0.6:
            ticket = d.escalate("low_confidence", priority="P2", context={"input": "the claim text"})
    assert client.flush(30)
    stored = EscalationTicket.objects.get(pk=ticket.id)
    assert stored.context["attempts"] == [{"tool": "classify", "arguments": {"text": "…"},
                                           "result": {"label": "deny", "p": 0.41}}]
    assert stored.context["input"] == "the claim text" and stored.context["confidence"] == 0.41
    event = Event.objects.get(request_key="req-low")
    assert (event.outcome, event.label) == ("escalated", "deny")
