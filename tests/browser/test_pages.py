"""Every page in a real browser, on one seeded demo world: no accessibility violation axe-core rates
serious or critical, no Content-Security-Policy violation, console error or request to another
host, no sideways scrolling at 390 px; and times shown in each person's own time zone."""
import re
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from escalations.models import EscalationTicket
from rollouts.models import Rollout, StageTransition
from telemetry.models import DiscrepantPair

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
# Collected in every page before its own scripts run: what the policy refused, and why.
CSP_LISTENER = """document.addEventListener("securitypolicyviolation", (e) => {
  (window.cspViolations = window.cspViolations || []).push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});"""


def _rollout(slug: str) -> Rollout:
    return Rollout.objects.filter(agent__slug=slug).order_by("-pk").first()


def _pair() -> str:
    rollout = _rollout("kyc-document-checker")
    key = DiscrepantPair.objects.filter(rollout=rollout, segment="passport-non-eu").values_list("request_key", flat=True).first()
    return f"/rollouts/{rollout.pk}/pairs/{key}/?against=human&segment=passport-non-eu"


# (who, page name, its path): the pages of issue 12's accessibility list, and the others people use.
PAGES = [
    ("olivia", "overview", lambda: "/"),
    ("olivia", "agents", lambda: "/agents/"),
    ("olivia", "agent", lambda: "/agents/claims-triage/"),
    ("olivia", "version matrix", lambda: "/agents/claims-triage/versions/2.4.0/"),
    ("olivia", "rollouts", lambda: "/rollouts/"),
    ("olivia", "rollout (live)", lambda: f"/rollouts/{_rollout('claims-triage').pk}/"),
    ("olivia", "rollout (staging, plan editor)", lambda: f"/rollouts/{_rollout('invoice-coder').pk}/"),
    ("olivia", "rollout (rolled back)", lambda: f"/rollouts/{_rollout('fraud-alert-summarizer').pk}/"),
    ("olivia", "shadow", lambda: f"/rollouts/{_rollout('kyc-document-checker').pk}/shadow/"),
    ("olivia", "discrepant pairs", lambda: f"/rollouts/{_rollout('kyc-document-checker').pk}/discrepancies/?against=human&segment=passport-non-eu"),
    ("olivia", "pair", _pair),
    ("olivia", "approvals (operator)", lambda: "/rollouts/approvals/"),
    ("olivia", "audit", lambda: "/audit/"),
    ("olivia", "account", lambda: "/account/"),
    ("rita", "queue", lambda: "/escalations/"),
    ("rita", "my tickets", lambda: "/escalations/mine/"),
    ("rita", "ticket (held)", lambda: f"/escalations/{EscalationTicket.objects.filter(claimed_by__username='rita').first().pk}/"),
    ("rita", "ticket (open)", lambda: f"/escalations/{EscalationTicket.objects.filter(status='open').first().pk}/"),
    ("maya", "approvals", lambda: "/rollouts/approvals/"),
]


def _visit(page, path: str) -> list[str]:
    """Open `path`; its console errors, CSP violations and requests to any other host (the app
    works offline: docs/pages.md, "What the browser loads") once it has settled."""
    errors, requested = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requested.append(request.url))
    page.goto(path)
    # Loaded, and every chart drawn (the live regions keep polling, so the network is never idle).
    page.wait_for_function("() => [...document.querySelectorAll('[data-figure]')]"
                           ".every((el) => el.classList.contains('js-plotly-plot'))")
    here = urlsplit(page.url).netloc
    elsewhere = [f"requested from another host: {url}" for url in requested
                 if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).netloc != here]
    return errors + page.evaluate("window.cspViolations || []") + elsewhere


@pytest.mark.parametrize("who, name, path", PAGES, ids=[name for _, name, _ in PAGES])
def test_page_is_accessible_policy_clean_and_fits_a_phone(world, world_db, who, name, path, screenshot_path):
    url = path()
    page = world.page(who)
    page.context.add_init_script(CSP_LISTENER)
    problems = _visit(page, url)
    assert problems == [], f"{name}: {problems}"

    serious = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
               for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{name}: {serious}"

    phone = world.page(who, **PHONE)
    phone.context.add_init_script(CSP_LISTENER)
    assert _visit(phone, url) == []
    width = phone.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} scrolls sideways at 390 px: {width} px wide"


def test_phone_width_overview_has_no_horizontal_scroll(world, world_db, screenshot_path):
    page = world.page("olivia", **PHONE)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    table = page.locator("#overview-table .table-scroll")
    # The table is wider than the phone: it scrolls inside its box, and the page does not.
    assert table.evaluate("el => el.scrollWidth > el.clientWidth")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    page.mouse.wheel(300, 0)
    assert page.evaluate("window.scrollX") == 0
    page.screenshot(path=screenshot_path("phone-overview"), full_page=True)


def test_nav_and_links_follow_the_policy(world, world_db):
    """Issue 12, 7: each person sees the pages, buttons and links they may use, and no other."""
    seen = {}
    for who in ("olivia", "rita", "maya"):
        page = world.page(who)
        seen[who] = page.get_by_role("navigation", name="Main").get_by_role("link").all_inner_texts()
        overview = page.locator("#overview-table")
        queue_links = overview.locator('a[href^="/escalations/"]').count()
        inbox_links = overview.locator('a[href^="/rollouts/approvals/"]').count()
        if who == "olivia":  # operator: no escalation queue
            assert queue_links == 0 and inbox_links > 0
        elif who == "rita":  # reviewer: no approvals inbox
            assert inbox_links == 0 and queue_links > 0
            page.goto("/rollouts/")
            assert page.locator('a[href^="/rollouts/approvals/"]').count() == 0
            page.goto(f"/rollouts/{_rollout('claims-triage').pk}/")
            expect(page.locator("#rollout-actions")).to_contain_text("Operators request promotions")
            assert page.get_by_role("button", name="Roll back").count() == 0
    assert seen == {
        "olivia": ["Overview", "Agents", "Rollouts", "Approvals", "Audit"],
        "rita": ["Overview", "Agents", "Rollouts", "Escalations"],
        "maya": ["Overview", "Agents", "Rollouts", "Escalations", "Approvals", "Audit"],
    }


def _shown(page, at: datetime) -> str:
    return page.locator(f'#rollout-history time[datetime="{at.isoformat()}"]').first.inner_text()


def test_a_persons_time_zone_changes_the_times_shown(world, world_db, screenshot_path):
    """Issue 12, 3: the browser's zone is proposed at first sign-in; once chosen, every time is in
    it with its abbreviation, and the footer says so; the account page changes it."""
    rollout = _rollout("claims-triage")
    start = StageTransition.objects.filter(rollout=rollout).order_by("at").first().at
    page = world.page("oscar", timezone_id="America/New_York")
    page.goto(f"/rollouts/{rollout.pk}/")
    footer = page.locator("footer")
    expect(footer).to_contain_text("times in UTC (UTC)")
    assert _shown(page, start).startswith(start.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M:%S UTC"))

    proposal = page.get_by_role("complementary", name="Time zone")
    expect(proposal).to_contain_text("Your browser is in America/New_York")
    proposal.get_by_role("button", name="Show times in America/New_York").click()
    expect(page).to_have_url(re.compile(f"/rollouts/{rollout.pk}/$"))
    local = start.astimezone(ZoneInfo("America/New_York"))
    expect(footer).to_contain_text(f"times in America/New_York ({datetime.now(ZoneInfo('America/New_York')).tzname()})")
    assert _shown(page, start).startswith(local.strftime("%Y-%m-%d %H:%M:%S ") + local.tzname())
    expect(page.get_by_role("complementary", name="Time zone")).to_have_count(0)  # chosen: no more proposal

    page.goto("/account/")
    page.get_by_label("Show times in").select_option("Asia/Kolkata")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#messages")).to_contain_text("Times are now shown in Asia/Kolkata")
    expect(footer).to_contain_text("times in Asia/Kolkata (IST)")
    page.goto(f"/rollouts/{rollout.pk}/")
    assert _shown(page, start).startswith(start.astimezone(ZoneInfo("Asia/Kolkata")).strftime("%Y-%m-%d %H:%M:%S IST"))
    page.screenshot(path=screenshot_path("time-zone"))
    # Another person's pages are not affected.
    other = world.page("olivia")
    other.goto(f"/rollouts/{rollout.pk}/")
    expect(other.locator("footer")).to_contain_text("times in UTC (UTC)")
