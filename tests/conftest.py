"""Shared fixtures: people with roles, API clients with tokens."""
import pytest
from django.db import connection
from django.test import Client

from rolloutops.tokens import token_issue
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _plain_http_and_private_cache(settings):
    # CI runs with production-like settings (DATABASE_URL set): the test client speaks plain HTTP.
    settings.SECURE_SSL_REDIRECT = False
    # Each test gets an empty in-process cache: test databases reuse ids, a shared cache would not.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}
    from django.core.cache import cache

    from rolloutops.tokens import tokens_cache_clear
    from rollouts.routing import routing_cache_clear
    from telemetry.selectors import rollups_cache_clear

    cache.clear()
    routing_cache_clear()
    tokens_cache_clear()
    rollups_cache_clear()
    yield
    cache.clear()
    routing_cache_clear()
    tokens_cache_clear()
    rollups_cache_clear()


def _flush_skips_triggers(execute, sql, params, many, context):
    if sql.lstrip()[:8].upper() == "TRUNCATE":
        # LOCAL: only inside the flush's own transaction; needs the test database's superuser.
        execute("SET LOCAL session_replication_role = replica", None, False, context)
    return execute(sql, params, many, context)


@pytest.fixture(autouse=True)
def _test_flush_passes_the_audit_guard():
    """A transactional test ends with Django's flush, a TRUNCATE of every table, which the audit
    guard refuses on PostgreSQL (as it must in production). That flush alone skips triggers; the
    wrapper is removed before the next test, so no test's own TRUNCATE does."""
    for wrappers in (connection.execute_wrappers,):
        while _flush_skips_triggers in wrappers:
            wrappers.remove(_flush_skips_triggers)
    yield
    if connection.vendor == "postgresql":
        connection.execute_wrappers.append(_flush_skips_triggers)


@pytest.fixture
def operator(db):
    return UserFactory(username="olivia", roles=["operator"])


@pytest.fixture
def operator2(db):
    return UserFactory(username="oscar", roles=["operator"])


@pytest.fixture
def reviewer(db):
    return UserFactory(username="rita", roles=["reviewer"])


@pytest.fixture
def reviewer2(db):
    return UserFactory(username="ravi", roles=["reviewer"])


@pytest.fixture
def manager(db):
    return UserFactory(username="maya", roles=["manager"])


@pytest.fixture
def manager2(db):
    return UserFactory(username="milo", roles=["manager"])


class ApiClient(Client):
    """A test client that speaks JSON to /api/v1/ with a bearer token."""

    def __init__(self, token: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.token = token

    def _headers(self, extra):
        headers = dict(extra or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return headers

    def get(self, path, data=None, headers=None, **kw):
        return super().get(path, data, headers=self._headers(headers), **kw)

    def post(self, path, data=None, headers=None, **kw):
        return super().post(path, data if data is not None else {}, content_type="application/json",
                            headers=self._headers(headers), **kw)


def _fresh_token(user, scopes: str, name: str | None = None) -> str:
    """A new API token of `user` with `scopes`, as its raw secret."""
    return token_issue(user=user, scopes=scopes, name=name or f"test-{user.username}-{scopes}")[1]


@pytest.fixture
def api_client_for():
    """api_client_for(user, "user,events:write") → a client with a fresh token of those scopes."""

    def make(user, scopes="user"):
        return ApiClient(token=_fresh_token(user, scopes))

    return make


@pytest.fixture
def bearer_headers():
    """bearer_headers(user, "route:read") → {"Authorization": "Bearer …"} with a fresh token of those scopes."""

    def make(user, scopes="user", name=None):
        return {"Authorization": f"Bearer {_fresh_token(user, scopes, name)}"}

    return make


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"
