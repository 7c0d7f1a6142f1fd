"""An operator signs in through the form, opens the audit log and narrows it to one action."""
import re

import pytest
from playwright.sync_api import expect

from rolloutops.audit import audit_record

pytestmark = pytest.mark.django_db(transaction=True)


def test_operator_signs_in_and_filters_the_audit_log(browser_page, signed_in_page, operator, screenshot_path):
    audit_record(actor=operator, action="rollout.paused", object_repr="support-bot 1.4.0 canary",
                 before={"state": "running"}, after={"state": "paused"})

    # A wrong password first: the form says so, and the attempt lands in the trail.
    browser_page.goto("/login/")
    browser_page.get_by_label("Username").fill("olivia")
    browser_page.get_by_label("Password").fill("not-the-password")
    browser_page.get_by_role("button", name="Sign in").click()
    expect(browser_page.get_by_role("alert")).to_contain_text("did not match")
    browser_page.screenshot(path=screenshot_path("login-failed"))

    page = signed_in_page(operator)
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator(".who")).to_contain_text("olivia")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    expect(page).to_have_url(re.compile(r"/audit/$"))
    table = page.locator("#audit-table")
    expect(table).to_contain_text("rollout.paused")
    expect(table).to_contain_text("auth.login_failed")

    page.get_by_label("Action").select_option("auth.login_failed")  # htmx swaps the table in place
    expect(page).to_have_url(re.compile(r"[?&]action=auth.login_failed"))
    expect(table).not_to_contain_text("rollout.paused")
    row = table.locator("tbody tr").filter(has_text="auth.login_failed")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("olivia")
    expect(row).not_to_contain_text("not-the-password")
    page.screenshot(path=screenshot_path("audit"), full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    csv_text = open(download.value.path(), encoding="utf-8").read()
    assert csv_text.splitlines()[0].startswith("id,at,actor,action")
    assert "auth.login_failed" in csv_text and "rollout.paused" not in csv_text
