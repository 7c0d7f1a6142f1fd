"""Real-browser tests: Debian's chromium driven by playwright against pytest-django's live server."""
import os
from pathlib import Path

import pytest
from django.test.utils import override_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"
TEST_PASSWORD = "correct-horse-9"  # what tests.factories.UserFactory sets


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; Django would then refuse ORM
    # calls from the test body as "async context", though the test itself is plain sync code.
    # Restored afterwards: `check --deploy` in a later subprocess rightly flags the variable.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def live_server(live_server_plain_http, live_server):
    return live_server


@pytest.fixture(scope="session")
def live_server_plain_http():
    # CI runs with production settings (DATABASE_URL set), where the site insists on HTTPS.
    # The live server speaks plain HTTP, and SecurityMiddleware reads these once, when the
    # server thread builds its handler, so they are switched off before it starts.
    with override_settings(SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False,
                           SECURE_HSTS_SECONDS=0):
        yield


@pytest.fixture
def browser_page(browser, live_server):
    """A fresh browser tab (own cookies) whose relative URLs go to the live server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1360, "height": 860},
                                  timezone_id="UTC")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def signed_in_page(browser_page):
    """signed_in_page(user) → the tab, signed in through the real login form, on the overview."""

    def sign_in(user, password: str = TEST_PASSWORD):
        browser_page.goto("/login/")
        browser_page.get_by_label("Username").fill(user.get_username())
        browser_page.get_by_label("Password").fill(password)
        browser_page.get_by_role("button", name="Sign in").click()
        browser_page.wait_for_url(lambda url: "/login/" not in url)
        return browser_page

    return sign_in


@pytest.fixture
def screenshot_path():
    """screenshot_path("audit") → screenshots/audit.png (the folder is git-ignored)."""

    def path(name: str) -> str:
        SCREENSHOTS.mkdir(exist_ok=True)
        return str(SCREENSHOTS / f"{name}.png")

    return path
