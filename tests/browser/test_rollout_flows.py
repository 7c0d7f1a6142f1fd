"""The daily work in a real browser, on the seeded demo world: a manager approves a promotion in
the inbox, an operator reads a shadow run's charts, a reviewer claims and resolves a ticket."""
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from escalations.models import EscalationTicket
from console.demo_seed import DEMO_PASSWORD
from rollouts.models import Rollout
from telemetry.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo_world():
    call_command("seed_demo")
    from django.contrib.auth import get_user_model

    return {u.username: u for u in get_user_model().objects.all()}


def test_manager_approves_a_promotion_from_the_inbox(demo_world, signed_in_page, screenshot_path):
    page = signed_in_page(demo_world["maya"], password=DEMO_PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    card = page.locator("section.card", has_text="support-router 5.0.1: canary → expand-10")
    expect(card).to_contain_text("guardrails healthy")
    page.screenshot(path=screenshot_path("approvals"), full_page=True)
    card.get_by_placeholder("comment (optional)").fill("canary figures hold")
    card.get_by_role("button", name="Approve").click()
    expect(page.locator(".messages")).to_contain_text("Approved: support-router@5.0.1 is now in expand-10")
    rollout = Rollout.objects.get(agent__slug="support-router")
    assert (rollout.stage_name, rollout.traffic_percent) == ("expand-10", 10)


def test_operator_reads_the_shadow_comparison_with_its_flagged_segment(demo_world, signed_in_page, screenshot_path):
    page = signed_in_page(demo_world["olivia"], password=DEMO_PASSWORD)
    page.get_by_role("link", name="kyc-document-checker").first.click()
    page.get_by_role("link", name=re.compile(r"Rollout #\d+: shadow")).click()
    expect(page.get_by_role("heading", name=re.compile("Shadow comparison"))).to_have_count(2)
    expect(page.locator("#live-panel")).to_contain_text("systematic discrepancy flagged in segment(s): passport-non-eu")
    # Plotly (from our own static files) has drawn every chart.
    expect(page.locator("[data-figure] .main-svg").first).to_be_visible()
    assert page.locator("[data-figure]").count() == page.locator("[data-figure].js-plotly-plot").count() >= 3
    page.screenshot(path=screenshot_path("rollout-shadow"), full_page=True)


def test_reviewer_claims_the_next_ticket_and_resolves_it(demo_world, signed_in_page, screenshot_path):
    page = signed_in_page(demo_world["rita"], password=DEMO_PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Escalations").click()
    expect(page.get_by_role("heading", name="Escalation queue")).to_be_visible()
    page.get_by_role("button", name="Claim next").click()
    expect(page).to_have_url(re.compile(r"/escalations/\d+/$"))
    ticket_id = int(re.search(r"/escalations/(\d+)/", page.url).group(1))
    expect(page.get_by_text("What the agent tried")).to_be_visible()
    page.screenshot(path=screenshot_path("ticket"), full_page=True)
    page.get_by_label("Decision (label)").fill("approve")
    page.get_by_label("Notes").fill("ledger shows a duplicate debit")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("body")).to_contain_text("Resolved")
    ticket = EscalationTicket.objects.get(pk=ticket_id)
    assert ticket.status == "resolved" and ticket.resolved_by.username == "rita"
    assert Event.objects.filter(agent=ticket.agent, request_key=ticket.request_key, kind="human", label="approve").exists()
