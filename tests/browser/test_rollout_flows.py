"""The daily work in a real browser, on one seeded demo world (each test on agents of its own): a
manager approves in the inbox, an operator rolls back while the page polls, edits a plan, drills
from a flagged segment to a pair, a reviewer resolves a ticket with one of the agent's labels."""
import re
import time

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from escalations.models import EscalationTicket, TicketStatus
from rollouts.models import PromotionRequest, Rollout, RolloutState, StageTransition, TransitionAction
from rollouts.promotions import promotion_request
from rolloutops.exceptions import DomainError
from telemetry.fold import events_fold
from telemetry.models import Event
from telemetry.services import events_ingest

pytestmark = pytest.mark.browser


def rollout_of(slug: str) -> Rollout:
    return Rollout.objects.filter(agent__slug=slug).order_by("-pk").first()


def count_polls(page, path: str) -> list:
    """Every answered poll (an htmx GET) of `path`, as it happens."""
    polls = []
    page.on("response", lambda r: polls.append(r.url) if (
        r.request.method == "GET" and r.request.headers.get("hx-request") == "true" and path in r.url) else None)
    return polls


def wait_for(polls: list, count: int, page, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    start = len(polls)
    while len(polls) < start + count:
        assert time.monotonic() < deadline, f"fewer than {count} polls in {seconds}s"
        page.wait_for_timeout(100)


def test_manager_approves_a_promotion_from_the_inbox(world, world_db, screenshot_path):
    page = world.page("maya")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    card = page.locator("section.card", has_text="support-router 5.0.1: canary → expand-10")
    expect(card).to_contain_text("guardrails healthy")
    page.screenshot(path=screenshot_path("approvals"), full_page=True)
    comment = card.get_by_placeholder("comment (optional)")
    comment.fill("canary figures hold")
    polls = count_polls(page, "/rollouts/approvals/")
    wait_for(polls, 2, page)  # the figures refresh; the comment being typed stays
    expect(comment).to_have_value("canary figures hold")
    card.get_by_role("button", name="Approve").click()
    expect(page.locator("#messages")).to_contain_text("Approved: support-router@5.0.1 is now in expand-10")
    expect(card).to_contain_text("Nothing left to decide here")
    expect(page.locator("#recent-decisions")).to_contain_text("canary figures hold")
    rollout = rollout_of("support-router")
    assert (rollout.stage_name, rollout.traffic_percent) == ("expand-10", 10)


def test_rollback_reason_survives_polls_and_is_recorded(world, world_db, screenshot_path):
    """Issue 12, 1 and 2: the reason typed into "why roll back?" outlives every poll, even one that
    brings changed actions and requests; the rollback records it and the history shows it at once."""
    rollout = rollout_of("refund-assistant")
    page = world.page("olivia")
    page.goto(f"/rollouts/{rollout.pk}/")
    page.evaluate("window.notReloaded = true")
    polls = count_polls(page, f"/rollouts/{rollout.pk}/")
    reason = page.get_by_label("Reason to roll back")
    reason.click()
    reason.type("p95 latency doubled since the 14:00 deploy")
    wait_for(polls, 2, page)
    expect(reason).to_have_value("p95 latency doubled since the 14:00 deploy")
    expect(reason).to_be_focused()

    # The operator looks elsewhere on the page, and someone else asks for a promotion meanwhile: the
    # next poll brings the request card and the actions anew, and still the typed reason stays.
    reason.blur()
    expect(reason).not_to_be_focused()
    try:
        promotion_request(actor=world_db.objects.get(username="oscar"), rollout=rollout, reason="from another desk")
    except DomainError:
        pass  # refused by its gates: kept, with its unmet conditions, all the same
    expect(page.locator("#rollout-promotions")).to_contain_text("oscar")
    expect(reason).to_have_value("p95 latency doubled since the 14:00 deploy")
    page.screenshot(path=screenshot_path("rollout"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Roll back").click()
    expect(page.locator("#messages")).to_contain_text("Rolled back: traffic to the agent is 0 %")
    latest = page.locator("#rollout-history li").first
    expect(latest).to_contain_text("rollback")
    expect(latest).to_contain_text("p95 latency doubled since the 14:00 deploy")
    expect(page.locator("#rollout-actions")).to_contain_text("This rollout has ended")
    assert page.evaluate("window.notReloaded") is True
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.ROLLED_BACK
    assert StageTransition.objects.filter(rollout=rollout, action=TransitionAction.ROLLBACK,
                                          reason="p95 latency doubled since the 14:00 deploy").exists()


def test_actions_keep_history_requests_and_messages_current(world, world_db):
    """Issue 12, 2 and 6: after each action the history and the requests are current without a
    reload, and its message stays through the polls."""
    rollout = rollout_of("claims-triage")
    page = world.page("olivia")
    page.goto(f"/rollouts/{rollout.pk}/")
    page.evaluate("window.notReloaded = true")
    polls = count_polls(page, f"/rollouts/{rollout.pk}/")
    rows = page.locator("#rollout-promotions tbody tr")
    before = rows.count()
    page.get_by_role("button", name="Request promotion").click()
    message = page.locator("#messages")
    expect(message).to_contain_text(re.compile(r"Promotion to expand-10 requested|refused|unmet"))
    expect(rows).to_have_count(before + 1)
    request = PromotionRequest.objects.filter(rollout=rollout).latest("pk")
    expect(page.locator(f"#promotion-request-{request.pk}")).to_contain_text(request.get_status_display())
    said = message.locator("li").first.evaluate("li => li.firstChild.textContent")
    wait_for(polls, 2, page)
    expect(message).to_contain_text(said)

    page.get_by_label("Reason to pause").fill("vendor outage upstream")
    page.get_by_role("button", name="Pause").click()
    latest = page.locator("#rollout-history li").first
    expect(latest).to_contain_text("pause")
    expect(latest).to_contain_text("vendor outage upstream")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    expect(page.locator("#live-panel")).to_contain_text("Paused")
    assert page.evaluate("window.notReloaded") is True


def test_shadow_panel_keeps_open_details_and_zoom_through_polls(world, world_db):
    """Issue 12, 6: a refresh closes no <details> and undoes no zoom, even when the figures change."""
    rollout = rollout_of("kyc-document-checker")
    page = world.page("olivia")
    page.goto(f"/rollouts/{rollout.pk}/shadow/")
    polls = count_polls(page, f"/rollouts/{rollout.pk}/shadow/")
    segments = page.locator("#shadow-segments-table")
    segments.locator("summary").click()
    expect(segments).to_have_attribute("open", "")
    chart = page.locator('[data-figure="shadow-agreement"]')
    expect(chart.locator(".main-svg").first).to_be_visible()
    # A zoom as a drag would make it (plotly.js's relayout of the axis range).
    zoomed = page.evaluate("""() => {
        const el = document.querySelector('[data-figure="shadow-agreement"]');
        const [a, b] = el._fullLayout.xaxis.range;
        const range = [a, new Date((new Date(a).getTime() + new Date(b).getTime()) / 2).toISOString()];
        return Plotly.relayout(el, {"xaxis.range": range}).then(() => el.layout.xaxis.range.map(String));
    }""")
    figure_before = page.locator("#shadow-agreement").text_content()
    # New pairs arrive: the next polls carry a changed figure, redrawn under the zoom.
    now = timezone.now().isoformat()
    batch = []
    for i in range(30):
        key = f"zoom-test-{i}"
        batch.append({"agent": rollout.agent.slug, "version": rollout.version.version, "request_key": key,
                      "kind": "agent", "label": "approve", "segment": "passport-eu", "occurred_at": now})
        batch.append({"agent": rollout.agent.slug, "request_key": key, "kind": "human", "label": "reject",
                      "segment": "passport-eu", "occurred_at": now})
    assert events_ingest(events=batch).accepted == 60
    events_fold()
    expect(page.locator("#shadow-agreement")).not_to_have_text(figure_before, timeout=15_000)
    wait_for(polls, 2, page)
    expect(segments).to_have_attribute("open", "")
    assert page.evaluate("""() => document.querySelector('[data-figure="shadow-agreement"]').layout.xaxis.range.map(String)""") == zoomed


def test_flagged_segment_drills_down_to_its_pairs(world, world_db, screenshot_path):
    """Issue 12, 5: a flagged segment opens its discrepant pairs; a pair steps to the next and back."""
    rollout = rollout_of("kyc-document-checker")
    page = world.page("olivia")
    page.goto(f"/rollouts/{rollout.pk}/")
    page.locator("[data-flagged-segment]", has_text="passport-non-eu").click()
    expect(page).to_have_url(re.compile(r"/discrepancies/\?against=human&segment=passport-non-eu"))
    rows = page.locator("#discrepant-pairs tbody tr")
    expect(rows.first).to_be_visible()
    for segment in rows.locator("td:nth-child(3)").all_inner_texts():
        assert segment == "passport-non-eu"
    total = int(re.search(r"([\d,]+), newest first", page.locator("main").inner_text()).group(1).replace(",", ""))
    assert total >= 2
    first_key = rows.first.locator("td").first.inner_text()
    rows.first.get_by_role("link").click()
    nav = page.get_by_role("navigation", name="Discrepant pairs")
    expect(nav).to_contain_text(f"Discrepant pair 1 of {total} in segment passport-non-eu")
    expect(page.get_by_role("heading", name=re.compile(re.escape(first_key)))).to_be_visible()
    page.screenshot(path=screenshot_path("pair"), full_page=True)
    nav.get_by_role("link", name="Older →").click()
    expect(nav).to_contain_text(f"Discrepant pair 2 of {total}")
    nav.get_by_role("link", name="← Newer").click()
    expect(nav).to_contain_text(f"Discrepant pair 1 of {total}")
    nav.get_by_role("link", name="Back to the list").click()
    expect(page).to_have_url(re.compile(r"segment=passport-non-eu"))


def test_operator_edits_the_plan_in_staging(world, world_db, screenshot_path):
    """Issue 12, 12: the plan of a rollout in staging, edited on its page; the plan rules' problems
    come back beside their fields with everything typed kept."""
    rollout = rollout_of("invoice-coder")
    assert rollout.stage_name == "staging"
    page = world.page("olivia")
    page.goto(f"/rollouts/{rollout.pk}/")
    editor = page.locator("#plan-editor")
    expect(editor).to_be_visible()
    editor.get_by_label("canary: traffic %").fill("150")
    editor.get_by_label("canary: stabilization in hours").fill("1.5")
    editor.get_by_label("canary: max_error_rate", exact=True).fill("0.03")
    editor.get_by_role("button", name="Save plan").click()
    traffic = editor.get_by_label("canary: traffic %")
    expect(traffic).to_have_attribute("aria-invalid", "true")
    expect(editor.locator("#stage-2-traffic_percent-error")).to_contain_text("between 0 and 100")
    expect(editor.get_by_role("alert")).to_contain_text("Plan not saved")
    expect(editor.get_by_label("canary: stabilization in hours")).to_have_value("1.5")
    page.screenshot(path=screenshot_path("plan-editor"), full_page=True)

    traffic.fill("2")
    rows = editor.locator("tr[data-stage-row]")
    count = rows.count()
    editor.get_by_role("button", name="Add a stage").click()
    expect(rows).to_have_count(count + 1)  # each change of rows is a round trip: wait for it
    new = rows.last
    new.get_by_label("new stage: name").fill("expand-75")
    new.get_by_label("new stage: traffic %").fill("75")
    new.get_by_label("new stage: stabilization in hours").fill("6")
    new.get_by_label("new stage: minimum samples").fill("800")
    # The new stage must sit before "full": remove full and add it back at the end.
    editor.get_by_role("button", name="Remove full").click()
    expect(editor.get_by_role("button", name="Remove full")).to_have_count(0)
    editor.get_by_role("button", name="Add a stage").click()
    expect(rows).to_have_count(count + 1)
    last = rows.last
    last.get_by_label("new stage: name").fill("full")
    last.get_by_label("new stage: traffic %").fill("100")
    last.get_by_label("new stage: stabilization in hours").fill("24")
    last.get_by_label("new stage: minimum samples").fill("1000")
    editor.get_by_role("button", name="Save plan").click()
    expect(page.locator("#messages")).to_contain_text("Plan saved")
    expect(page.locator("#live-panel")).to_contain_text("expand-75")
    stages = {s.name: s for s in rollout.stages.all()}
    assert list(stages) == ["staging", "shadow", "canary", "expand-10", "expand-25", "expand-50", "expand-75", "full"]
    assert (stages["canary"].traffic_percent, stages["canary"].min_duration_s) == (2, 5400)
    assert stages["canary"].guardrails["max_error_rate"] == 0.03
    assert (stages["expand-75"].traffic_percent, stages["expand-75"].min_samples) == (75, 800)
    assert stages["expand-75"].guardrails["max_error_rate"] == 0.05  # the default


def test_operator_reads_the_shadow_comparison_with_its_flagged_segment(world, world_db, screenshot_path):
    page = world.page("olivia")
    page.get_by_role("link", name="kyc-document-checker").first.click()
    page.get_by_role("link", name=re.compile(r"Rollout #\d+: shadow")).click()
    expect(page.get_by_role("heading", name=re.compile("Shadow comparison"))).to_have_count(1)
    expect(page.locator("#live-panel")).to_contain_text("systematic discrepancy flagged in segment(s): passport-non-eu")
    # Plotly (our partial bundle, from our own static files) has drawn every chart, and holds only
    # the trace types the charts use.
    expect(page.locator("[data-figure] .main-svg").first).to_be_visible()
    assert page.locator("[data-figure]").count() == page.locator("[data-figure].js-plotly-plot").count() >= 3
    assert sorted(page.evaluate("Object.keys(Plotly.PlotSchema.get().traces)")) == ["bar", "heatmap", "scatter"]
    page.screenshot(path=screenshot_path("rollout-shadow"), full_page=True)


def test_reviewer_resolves_with_one_of_the_agents_labels_or_a_confirmed_new_one(world, world_db, screenshot_path):
    """Issue 12, 4: the decision comes from the labels the agent uses; "other…" needs a confirmation;
    the notes stay free text, and stay put when the resolution is refused."""
    page = world.page("rita")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Escalations").click()
    expect(page.get_by_role("heading", name="Escalation queue")).to_be_visible()
    page.get_by_role("button", name="Claim next").click()
    expect(page).to_have_url(re.compile(r"/escalations/\d+/$"))
    ticket = EscalationTicket.objects.get(pk=int(re.search(r"/escalations/(\d+)/", page.url).group(1)))
    agent_labels = set(Event.objects.filter(agent=ticket.agent, kind="agent").values_list("label", flat=True))
    expect(page.get_by_text("What the agent tried")).to_be_visible()
    decision = page.get_by_label("Decision", exact=True)
    offered = [o for o in decision.locator("option").all_inner_texts()]
    assert set(offered[1:-1]) == agent_labels and offered[-1].startswith("other…")
    expect(page.get_by_label("New label", exact=True)).to_be_hidden()

    decision.select_option(label=offered[-1])
    page.get_by_label("New label", exact=True).fill("Approved - looks fine")
    page.get_by_label("Notes").fill("ledger shows a duplicate debit")
    page.screenshot(path=screenshot_path("ticket"), full_page=True)
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#messages")).to_contain_text("tick the confirmation")
    expect(page.get_by_label("Notes")).to_have_value("ledger shows a duplicate debit")
    assert EscalationTicket.objects.get(pk=ticket.pk).status == TicketStatus.CLAIMED

    label = sorted(agent_labels)[0]
    page.get_by_label("Decision", exact=True).select_option(label)
    expect(page.get_by_label("New label", exact=True)).to_be_hidden()
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#messages")).to_contain_text(f"Resolved as “{label}”")
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED and ticket.resolved_by.username == "rita"
    assert ticket.resolution_label == label and ticket.resolution_notes == "ledger shows a duplicate debit"
    assert Event.objects.filter(agent=ticket.agent, request_key=ticket.request_key, kind="human", label=label).exists()
