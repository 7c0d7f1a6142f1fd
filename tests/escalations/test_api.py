"""The escalations API: runtimes open tickets (validated, idempotent); reviewers work the queue."""
import json

import pytest

from escalations.models import EscalationTicket
from rolloutops.audit import audit_seal, audit_verify
from rolloutops.models import AuditEntry
from telemetry.models import Event
from tests.escalations.conftest import sample_context

pytestmark = pytest.mark.django_db


def ticket_body(**overrides):
    body = {"agent": "claims-triage", "request_key": "claim-1042", "reason": "tool_failure", "priority": "P2",
            "context": sample_context()}
    body.update(overrides)
    return body


@pytest.fixture
def rita(reviewer, api_client_for):
    return api_client_for(reviewer, "user")


@pytest.fixture
def ravi(reviewer2, api_client_for):
    return api_client_for(reviewer2, "user")


def test_runtime_opens_a_ticket_with_its_context(runtime_client, agent, settings):
    response = runtime_client.post("/api/v1/escalations", ticket_body())
    assert response.status_code == 201, response.content
    ticket = response.json()
    assert {k: ticket[k] for k in ("agent", "request_key", "reason", "priority", "status", "claimed_by")} == {
        "agent": "claims-triage", "request_key": "claim-1042", "reason": "tool_failure", "priority": "P2",
        "status": "open", "claimed_by": None}
    assert ticket["context"]["attempts"][1]["error"] == "model timeout after 30s"
    assert ticket["has_context"] is True and ticket["sla_breached"] is False
    row = EscalationTicket.objects.get(pk=ticket["id"])
    assert (row.due_at - row.created_at).total_seconds() == settings.ROLLOUTOPS["SLA_SECONDS"]["P2"]


def test_opening_twice_returns_the_same_ticket(runtime_client, agent):
    first = runtime_client.post("/api/v1/escalations", ticket_body())
    again = runtime_client.post("/api/v1/escalations", ticket_body(priority="P1"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["priority"] == "P2"
    assert EscalationTicket.objects.count() == 1


def test_ticket_without_attempts_is_flagged_as_lacking_context(runtime_client, agent):
    response = runtime_client.post("/api/v1/escalations", ticket_body(context={"input": "hello"}))
    assert response.status_code == 201 and response.json()["has_context"] is False


@pytest.mark.parametrize("change, field", [
    ({"reason": "bored"}, "reason"),
    ({"priority": "P9"}, "priority"),
    ({"request_key": None}, "request_key"),
    ({"context": {"attempts": [{"arguments": {}}]}}, "tool"),
    ({"context": {"confidence": 3}}, "confidence"),
    ({"request_key": "k" * 201}, "request_key"),
])
def test_invalid_tickets_are_refused_naming_the_field(runtime_client, agent, change, field):
    body = ticket_body(**change)
    body = {k: v for k, v in body.items() if v is not None}
    response = runtime_client.post("/api/v1/escalations", body)
    assert response.status_code == 422, response.content
    assert field in json.dumps(response.json()["detail"])
    assert EscalationTicket.objects.count() == 0


def test_too_many_attempts_are_refused(runtime_client, agent):
    attempts = [{"tool": "lookup"}] * 201
    response = runtime_client.post("/api/v1/escalations", ticket_body(context={"input": "x", "attempts": attempts}))
    assert response.status_code == 422


def test_oversized_context_is_refused(runtime_client, agent):
    response = runtime_client.post("/api/v1/escalations", ticket_body(context={"input": "x" * (257 * 1024)}))
    assert response.status_code == 413
    assert "256 KiB" in response.json()["detail"]


def test_unknown_agent_is_refused(runtime_client, agent):
    response = runtime_client.post("/api/v1/escalations", ticket_body(agent="ghost"))
    assert response.status_code == 422 and "ghost" in response.json()["detail"]


def test_opening_needs_the_escalations_scope(operator, api_client_for, agent):
    response = api_client_for(operator, "events:write").post("/api/v1/escalations", ticket_body())
    assert response.status_code == 403


def test_reviewers_cannot_open_and_operators_cannot_claim(reviewer, operator, api_client_for, agent):
    assert api_client_for(reviewer, "escalations:write").post("/api/v1/escalations", ticket_body()).status_code == 403
    assert api_client_for(operator, "user").post("/api/v1/escalations/claim-next").status_code == 403


def test_claim_next_returns_the_ticket_then_204(rita, make_ticket):
    ticket = make_ticket(priority="P1")
    response = rita.post("/api/v1/escalations/claim-next")
    assert response.status_code == 200
    assert response.json()["id"] == ticket.pk and response.json()["claimed_by"] == "rita"
    assert response.json()["lease_expires_at"]
    assert rita.post("/api/v1/escalations/claim-next").status_code == 204


def test_a_claim_through_the_api_is_audited_with_its_token_and_address_and_seals_into_the_chain(rita, make_ticket):
    ticket = make_ticket(priority="P1")
    assert rita.post("/api/v1/escalations/claim-next").status_code == 200
    entry = AuditEntry.objects.get(action="ticket.claimed")
    assert entry.actor_label.startswith("rita via token ")
    assert (entry.object_type, entry.object_id, entry.object_repr) == ("escalations.escalationticket", str(ticket.pk),
                                                                       str(ticket))
    assert entry.source_ip == "127.0.0.1" and not entry.sealed
    audit_seal()
    assert AuditEntry.objects.get(pk=entry.pk).sealed
    assert audit_verify().intact


def test_claim_next_with_filters(rita, make_ticket):
    make_ticket(priority="P1")
    p3 = make_ticket(priority="P3")
    response = rita.post("/api/v1/escalations/claim-next", {"priority": "P3"})
    assert response.json()["id"] == p3.pk


def test_claim_of_a_taken_ticket_is_409_naming_the_holder(rita, ravi, make_ticket):
    ticket = make_ticket()
    assert rita.post(f"/api/v1/escalations/{ticket.pk}/claim").status_code == 200
    response = ravi.post(f"/api/v1/escalations/{ticket.pk}/claim")
    assert response.status_code == 409
    assert response.json()["claimed_by"] == "rita"
    assert "claimed by rita until" in response.json()["detail"]


def test_non_claimant_cannot_resolve(rita, ravi, make_ticket):
    ticket = make_ticket()
    assert ravi.post(f"/api/v1/escalations/{ticket.pk}/resolve", {"label": "approve"}).status_code == 409
    rita.post(f"/api/v1/escalations/{ticket.pk}/claim")
    response = ravi.post(f"/api/v1/escalations/{ticket.pk}/resolve", {"label": "approve"})
    assert response.status_code == 403 and response.json()["claimed_by"] == "rita"


def test_resolve_records_the_human_decision(rita, make_ticket):
    ticket = make_ticket(request_key="claim-77")
    rita.post(f"/api/v1/escalations/{ticket.pk}/claim")
    response = rita.post(f"/api/v1/escalations/{ticket.pk}/resolve", {"label": "deny", "notes": "no cover"})
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["resolution_label"], body["resolved_by"]) == ("resolved", "deny", "rita")
    assert Event.objects.filter(request_key="claim-77", kind="human", label="deny").count() == 1
    again = rita.post(f"/api/v1/escalations/{ticket.pk}/resolve", {"label": "deny"})
    assert again.status_code == 409


def test_resolve_needs_a_label(rita, make_ticket):
    ticket = make_ticket()
    rita.post(f"/api/v1/escalations/{ticket.pk}/claim")
    assert rita.post(f"/api/v1/escalations/{ticket.pk}/resolve", {"notes": "hm"}).status_code == 422


def test_renew_and_release(rita, ravi, manager, api_client_for, make_ticket):
    ticket = make_ticket()
    rita.post(f"/api/v1/escalations/{ticket.pk}/claim")
    assert rita.post(f"/api/v1/escalations/{ticket.pk}/renew").status_code == 200
    assert ravi.post(f"/api/v1/escalations/{ticket.pk}/renew").status_code == 409
    assert ravi.post(f"/api/v1/escalations/{ticket.pk}/release").status_code == 403
    maya = api_client_for(manager, "user")
    response = maya.post(f"/api/v1/escalations/{ticket.pk}/release", {"note": "rita is off sick"})
    assert response.status_code == 200 and response.json()["status"] == "open"


def test_list_filters_and_paginates(rita, make_ticket, agent):
    from tests.factories import AgentFactory

    other = AgentFactory(slug="refunds")
    for _ in range(3):
        make_ticket(priority="P2")
    make_ticket(priority="P1", for_agent=other)
    mine = make_ticket(priority="P4")
    rita.post(f"/api/v1/escalations/{mine.pk}/claim")

    page = rita.get("/api/v1/escalations", {"limit": 2}).json()
    assert page["count"] == 4 and len(page["results"]) == 2
    assert page["results"][0]["agent"] == "refunds" and page["results"][0]["context"] == {}
    assert rita.get("/api/v1/escalations", {"limit": 2, "offset": 2}).json()["results"][-1]["priority"] == "P2"
    assert rita.get("/api/v1/escalations", {"agent": "refunds"}).json()["count"] == 1
    assert rita.get("/api/v1/escalations", {"priority": "P2"}).json()["count"] == 3
    assert [t["id"] for t in rita.get("/api/v1/escalations", {"mine": "true"}).json()["results"]] == [mine.pk]
    assert rita.get("/api/v1/escalations", {"status": "all"}).json()["count"] == 5
    assert rita.get("/api/v1/escalations", {"priority": "P7"}).status_code == 422


def test_detail_and_404(rita, make_ticket):
    ticket = make_ticket()
    assert rita.get(f"/api/v1/escalations/{ticket.pk}").json()["context"]["partial_output"]
    assert rita.get("/api/v1/escalations/999999").status_code == 404
