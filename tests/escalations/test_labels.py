"""Resolving a ticket records a decision the agent itself makes (its labels, seen in its events), so
the pair it forms measures agreement and not spelling; a new label needs a confirmation."""
import pytest

from escalations.models import TicketStatus
from escalations.services import ticket_claim, ticket_resolve
from rolloutops.exceptions import Invalid
from telemetry.models import Event
from telemetry.selectors import agent_labels

from .conftest import AGENT_LABELS

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def test_the_labels_are_those_of_the_agents_own_decisions(agent, make_ticket):
    assert agent_labels(agent_id=agent.pk) == sorted(AGENT_LABELS)
    ticket = make_ticket()
    Event.objects.create(agent=agent, request_key="h-1", kind="human", label="Approved - looks fine",
                         occurred_at=ticket.created_at)
    assert "Approved - looks fine" not in agent_labels(agent_id=agent.pk)  # a person's words are not the agent's


def test_a_label_the_agent_never_uses_is_refused_unless_confirmed(reviewer, make_ticket):
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    with pytest.raises(Invalid, match="is not a decision claims-triage makes") as refused:
        ticket_resolve(reviewer=reviewer, ticket=ticket, label="Approved - looks fine")
    assert refused.value.extra["known"] == sorted(AGENT_LABELS)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLAIMED
    resolved = ticket_resolve(reviewer=reviewer, ticket=ticket, label="escalate to legal", new_label=True)
    assert resolved.resolution_label == "escalate to legal"


def test_the_agents_spelling_wins_over_the_case_typed(reviewer, make_ticket):
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    resolved = ticket_resolve(reviewer=reviewer, ticket=ticket, label=" Approve ")
    assert resolved.resolution_label == "approve"
    assert Event.objects.filter(request_key=ticket.request_key, kind="human", label="approve").exists()


def test_api_answers_422_for_an_unknown_label_and_takes_new_label(reviewer, make_ticket, api_client_for):
    rita = api_client_for(reviewer)
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    refused = rita.post(f"/api/v1/escalations/{ticket.pk}/resolve", {"label": "Approved - looks fine"})
    assert refused.status_code == 422 and "confirm that this is a new label" in refused.json()["detail"]
    done = rita.post(f"/api/v1/escalations/{ticket.pk}/resolve", {"label": "Approved - looks fine", "new_label": True})
    assert done.status_code == 200 and done.json()["resolution_label"] == "Approved - looks fine"


def test_the_page_offers_the_agents_labels_and_other(client, reviewer, make_ticket):
    client.force_login(reviewer)
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    html = client.get(f"/escalations/{ticket.pk}/").content.decode()
    select = html.split('<select id="resolve-label"')[1].split("</select>")[0]
    for label in AGENT_LABELS:
        assert f'<option value="{label}">{label}</option>' in select
    assert '<option value="__other__">other…' in select and 'name="confirm_new_label"' in html


def test_other_without_confirmation_is_refused_and_keeps_what_was_typed(client, reviewer, make_ticket):
    client.force_login(reviewer)
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    form = {"label": "__other__", "new_label": "Approved - looks fine", "notes": "ledger shows a duplicate debit"}
    html = client.post(f"/escalations/{ticket.pk}/resolve/", form, headers=HX).content.decode()
    assert "tick the confirmation to record it" in html and 'hx-swap-oob="true"' in html
    assert 'value="Approved - looks fine"' in html and ">ledger shows a duplicate debit</textarea>" in html
    assert '<option value="__other__" selected>' in html
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLAIMED
    client.post(f"/escalations/{ticket.pk}/resolve/", {**form, "confirm_new_label": "yes"}, headers=HX)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.resolution_label) == (TicketStatus.RESOLVED, "Approved - looks fine")
