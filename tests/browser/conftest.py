"""Real-browser tests: Debian's chromium driven by playwright against pytest-django's live server,
or against a module's shared demo world (`world`): seeded once, served by its own live server,
emptied afterwards."""
import os
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connection
from django.test.utils import override_settings, setup_databases, teardown_databases
from pytest_django.live_server_helper import LiveServer

from console.demo_seed import DEMO_PASSWORD
from tests.conftest import _flush_skips_triggers

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"
# Live regions poll every second in the browser tests, so "survives two polls" takes seconds.
FAST_REFRESH = {name: 1 for name in settings.ROLLOUTOPS["REFRESH_SECONDS"]}
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


@dataclass
class World:
    url: str
    browser: object
    contexts: list = field(default_factory=list)

    sessions: dict = field(default_factory=dict)

    def page(self, username: str, *, timezone_id: str = "UTC", width: int = 1360, height: int = 860):
        """A fresh tab signed in as `username`, on the overview: through the login form the first
        time, then in a new context with that session's cookies. Closed with the test (world_db), so
        no page of a finished test keeps polling."""
        context = self.browser.new_context(base_url=self.url, viewport={"width": width, "height": height},
                                           timezone_id=timezone_id, storage_state=self.sessions.get(username))
        self.contexts.append(context)
        context.set_default_timeout(10_000)
        page = context.new_page()
        if username in self.sessions:
            page.goto("/")
            return page
        page.goto("/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/login/" not in url)
        self.sessions[username] = context.storage_state()
        return page


@pytest.fixture(scope="module")
def world(browser, django_db_setup, django_db_blocker):
    """The demo (seed_demo) behind a live server, shared by a module's tests: each test works on
    agents of its own, so they do not disturb one another. Seeding takes seconds; a world per test
    would make the browser tests minutes. Live regions poll every second here. Afterwards the
    database is emptied, as a transactional test leaves it."""
    overrides = override_settings(
        SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False, SECURE_HSTS_SECONDS=0,
        ROLLOUTOPS={**settings.ROLLOUTOPS, "REFRESH_SECONDS": FAST_REFRESH},
    )
    overrides.enable()
    own_databases = None
    try:
        with django_db_blocker.unblock():
            # pytest-django creates the test database only for a session with a test marked for it;
            # run alone, these tests (which take no per-test database) create it themselves.
            if connection.settings_dict["NAME"] != connection.creation._get_test_db_name():
                own_databases = setup_databases(verbosity=0, interactive=False, aliases={DEFAULT_DB_ALIAS})
            call_command("seed_demo", stdout=StringIO())
        server = LiveServer("localhost")
        server._live_server_modified_settings.enable()
        try:
            yield World(server.url, browser)
        finally:
            server._live_server_modified_settings.disable()
            server.stop()
            with django_db_blocker.unblock(), connection.execute_wrapper(_flush_skips_triggers):
                call_command("flush", interactive=False, verbosity=0)
                if own_databases is not None:
                    teardown_databases(own_databases, verbosity=0)
    finally:
        overrides.disable()


@pytest.fixture
def world_db(world, django_db_blocker):
    """Every test on the world takes this: the server may use the database while it runs (pytest-django
    blocks it otherwise), and the test reads and writes it too (committed at once: the server sees it).
    The test's tabs close before the database is blocked again."""
    with django_db_blocker.unblock():
        try:
            yield get_user_model()
        finally:
            while world.contexts:
                world.contexts.pop().close()
