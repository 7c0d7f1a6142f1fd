"""The ticket table keeps one index per lookup (escalations/migrations/0003): the lookups by claimant
and by agent are served by the composite indexes that lead with those columns."""
import pytest
from django.db import connection

from escalations.models import EscalationTicket
from escalations.selectors import tickets_list
from tests.plans import index_plan


@pytest.fixture
def indexes(postgres_only, db):
    with connection.cursor() as cursor:
        return {index["columns"][0] if len(index["columns"]) == 1 else name: index["columns"]
                for name, index in connection.introspection.get_constraints(cursor, EscalationTicket._meta.db_table).items()
                if index["index"]}


def test_no_single_column_index_duplicates_a_composite_prefix(indexes):
    assert "agent_id" not in indexes and "claimed_by_id" not in indexes
    assert indexes["ticket_by_claimant"] == ["claimed_by_id", "status"]


def test_a_tickets_history_is_indexed_once(postgres_only, make_ticket, reviewer):
    from escalations.models import TicketEvent
    from escalations.services import ticket_claim_next

    with connection.cursor() as cursor:
        history = [index["columns"] for index in connection.introspection.get_constraints(
            cursor, TicketEvent._meta.db_table).values() if index["index"] and "ticket_id" in index["columns"]]
    assert history == [["ticket_id", "at"]]
    ticket = make_ticket()
    ticket_claim_next(reviewer=reviewer)
    assert "ticketevent_by_ticket" in index_plan(TicketEvent.objects.filter(ticket=ticket).order_by("at"))


def test_a_reviewers_claims_are_found_through_the_claimant_index(postgres_only, make_ticket, operator):
    make_ticket()
    explained = index_plan(tickets_list(status="all", claimed_by=operator))
    assert "ticket_by_claimant" in explained


def test_an_agents_tickets_are_found_through_the_one_per_request_index(postgres_only, agent, make_ticket):
    make_ticket()
    explained = index_plan(EscalationTicket.objects.filter(agent=agent))
    assert "ticket_one_per_request" in explained
