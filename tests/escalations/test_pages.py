"""The queue, my tickets and the ticket page, with and without htmx."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from escalations.models import EscalationTicket, TicketStatus
from escalations.services import ticket_claim

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture
def rita_browser(reviewer):
    client = Client()
    client.force_login(reviewer)
    return client


@pytest.fixture
def ravi_browser(reviewer2):
    client = Client()
    client.force_login(reviewer2)
    return client


def test_empty_queue_renders_its_empty_state(rita_browser):
    response = rita_browser.get("/escalations/")
    assert response.status_code == 200
    assert b"The queue is empty" in response.content
    assert b'data-live' in response.content and b'hx-trigger="every 5s"' in response.content


def test_queue_lists_open_tickets_by_priority_with_breaches_highlighted(rita_browser, make_ticket):
    p3 = make_ticket(priority="P3", request_key="slow-one")
    p1 = make_ticket(priority="P1", request_key="urgent-one")
    EscalationTicket.objects.filter(pk=p3.pk).update(due_at=timezone.now() - timedelta(minutes=3))
    html = rita_browser.get("/escalations/").content.decode()
    assert html.index("urgent-one") < html.index("slow-one")
    assert 'class="breach"' in html and "overdue by" in html and "due in" in html
    assert f'href="/escalations/{p1.pk}/"' in html and "Claim next" in html


def test_queue_filters(rita_browser, make_ticket):
    make_ticket(priority="P1", reason="policy", request_key="policy-one")
    make_ticket(priority="P2", reason="timeout", request_key="timeout-one")
    html = rita_browser.get("/escalations/", {"reason": "timeout"}).content.decode()
    assert "timeout-one" in html and "policy-one" not in html
    assert "No open tickets match" in rita_browser.get("/escalations/", {"agent": "nobody"}).content.decode()


def test_htmx_poll_returns_only_the_table(rita_browser, make_ticket):
    make_ticket(request_key="in-the-table")
    html = rita_browser.get("/escalations/", headers=HX).content.decode()
    assert html.lstrip().startswith('<div id="queue-table"') and "in-the-table" in html
    assert "<html" not in html and "Claim next" not in html


def test_operators_cannot_see_the_queue(operator):
    client = Client()
    client.force_login(operator)
    assert client.get("/escalations/").status_code == 403


def test_claim_next_button_redirects_to_the_claimed_ticket(rita_browser, make_ticket):
    ticket = make_ticket()
    response = rita_browser.post("/escalations/claim-next/")
    assert response.status_code == 302 and response["Location"] == f"/escalations/{ticket.pk}/"
    assert EscalationTicket.objects.get(pk=ticket.pk).claimed_by.username == "rita"
    hx = rita_browser.post("/escalations/claim-next/", headers=HX)
    assert hx["HX-Redirect"] == "/escalations/"
    assert "Nothing to claim" in rita_browser.get("/escalations/").content.decode()


def test_ticket_page_shows_the_context_timeline(rita_browser, make_ticket):
    ticket = make_ticket()
    html = rita_browser.get(f"/escalations/{ticket.pk}/").content.decode()
    for text in ("Windscreen cracked", "policy_lookup", "comprehensive", "damage_estimator",
                 "model timeout after 30s", "30000 ms", "Covered; estimate unavailable", "41 %",
                 "/agents/claims-triage/"):
        assert text in html, text
    assert 'action="/escalations/%d/claim/"' % ticket.pk in html
    assert "Resolve" not in html.split('id="ticket-actions"')[1]


def test_holder_sees_renew_resolve_and_the_page_renews_the_lease(rita_browser, reviewer, make_ticket):
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    html = rita_browser.get(f"/escalations/{ticket.pk}/").content.decode()
    assert f'hx-post="/escalations/{ticket.pk}/renew/"' in html and 'hx-trigger="every 60s"' in html
    assert 'name="label"' in html and "Release" in html


def test_claim_from_the_ticket_page_conflict_shows_the_holder(ravi_browser, reviewer, make_ticket):
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    response = ravi_browser.post(f"/escalations/{ticket.pk}/claim/", headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="ticket-panel"') and "claimed by rita until" in html
    plain = ravi_browser.post(f"/escalations/{ticket.pk}/claim/")
    assert plain.status_code == 302


def test_resolve_from_the_page(rita_browser, reviewer, make_ticket):
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    response = rita_browser.post(f"/escalations/{ticket.pk}/resolve/", {"label": "approve", "notes": "ok"}, headers=HX)
    assert "Resolved as" in response.content.decode()
    assert EscalationTicket.objects.get(pk=ticket.pk).status == TicketStatus.RESOLVED
    assert "approve" in rita_browser.get("/escalations/mine/").content.decode()


def test_renew_poll_returns_the_status_fragment(rita_browser, reviewer, make_ticket):
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    response = rita_browser.post(f"/escalations/{ticket.pk}/renew/", {"fragment": "status"}, headers=HX)
    assert response.content.decode().lstrip().startswith('<div id="ticket-status"')


def test_my_tickets_page(rita_browser, reviewer, make_ticket):
    assert "You hold no tickets" in rita_browser.get("/escalations/mine/").content.decode()
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket(request_key="held-by-rita"))
    html = rita_browser.get("/escalations/mine/").content.decode()
    assert "held-by-rita" in html and f"/escalations/{ticket.pk}/" in html


def test_missing_ticket_is_404(rita_browser):
    assert rita_browser.get("/escalations/99999/").status_code == 404


def test_queue_page_query_count_does_not_grow_with_tickets(rita_browser, make_ticket, django_assert_max_num_queries):
    for i in range(30):
        make_ticket(priority=f"P{1 + i % 4}")
    rita_browser.get("/escalations/")  # warm the session and role caches
    with django_assert_max_num_queries(12):
        assert rita_browser.get("/escalations/", headers=HX).status_code == 200

