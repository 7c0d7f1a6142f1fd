"""GET /api/v1/route is served by a plain view ahead of django-ninja (rollouts/api.py); the ninja
operation stays as its specification. Every case here is asked of both, the same way a runtime
asks, and must get the same status, content type and body."""
import pytest
from django.test import Client, override_settings
from django.urls import path

from console.api import api
from rollouts.models import Rollout
from rollouts.routing import routing_cache_clear
from tests.core.test_outages import database_down  # noqa: F401 - fixture
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# This module is also a URLconf: the API alone, so /api/v1/route reaches the ninja operation.
urlpatterns = [path("api/v1/", api.urls)]
NINJA_ONLY = __name__


def _ask(client, params, headers, *, method="get"):
    response = getattr(client, method)("/api/v1/route", params, headers=headers)
    return response.status_code, response["Content-Type"], response.content, response.get("Allow")


def _both(client, params=None, headers=None, *, method="get"):
    served = _ask(client, params, headers, method=method)
    with override_settings(ROOT_URLCONF=NINJA_ONLY):
        specified = _ask(client, params, headers, method=method)
    return served, specified


@pytest.fixture
def live(fast_rollout):
    stage = fast_rollout.stages.get(name="expand-25")
    Rollout.objects.filter(pk=fast_rollout.pk).update(stage_index=stage.position, stage_name=stage.name, mode="live",
                                                      traffic_percent=25)
    routing_cache_clear()
    return fast_rollout


def test_the_served_route_answers_as_the_specified_operation(live, operator, bearer_headers):
    slug = live.agent.slug
    tokens = {name: bearer_headers(user, scopes, name) for name, user, scopes in (
        ("runtime", operator, "route:read"), ("user", operator, "user"), ("events", operator, "events:write"),
        ("no-role", UserFactory(username="nobody", roles=[]), "route:read"))}
    runtime = tokens["runtime"]
    cases = [
        ({"agent": slug, "key": f"req-{i}"}, runtime) for i in range(40)  # both handlers at 25 %
    ] + [
        ({"agent": slug, "key": "k"}, tokens["user"]),
        ({"agent": slug, "key": "k", "extra": "ignored"}, runtime),
        ({}, runtime), ({"agent": slug}, runtime), ({"key": "k"}, runtime),
        ({"agent": slug, "key": ""}, runtime), ({"agent": slug, "key": "x" * 201}, runtime),
        ({"agent": slug, "key": "x" * 200}, runtime),
        ({"agent": "ghost", "key": "k"}, runtime), ({"agent": "¡\x98bÄ", "key": "k"}, runtime),
        ({"agent": "a" * 65, "key": "k"}, runtime), ({"agent": [slug, "ghost"], "key": "k"}, runtime),
        ({"agent": slug, "key": "k"}, tokens["events"]), ({"agent": slug, "key": "k"}, tokens["no-role"]),
        ({"agent": slug, "key": "k"}, {"Authorization": "Bearer rlo_not-a-token"}),
        ({"agent": slug, "key": "k"}, {"Authorization": runtime["Authorization"].replace("Bearer", "bearer")}),
        ({"agent": slug, "key": "k"}, {"Authorization": "Basic b2xpdmlhOnB3"}),
        ({"agent": slug, "key": "k"}, {}),
    ]
    client = Client()
    statuses = set()
    for params, headers in cases:
        served, specified = _both(client, params, headers)
        assert served == specified, (params, headers)
        statuses.add(served[0])
    assert statuses == {200, 401, 403, 404, 422}
    for method in ("post", "put", "delete", "head", "options"):
        served, specified = _both(client, headers=runtime, method=method)
        assert served == specified and served[0] == 405, method


def test_a_signed_in_person_gets_the_same_answer_as_the_specified_operation(live, operator):
    browser = Client()
    browser.force_login(operator)
    served, specified = _both(browser, {"agent": live.agent.slug, "key": "k"})
    assert served == specified and served[0] == 200
    stranger = Client()
    stranger.force_login(UserFactory(username="nobody", roles=[]))
    served, specified = _both(stranger, {"agent": live.agent.slug, "key": "k"})
    assert served == specified and served[0] == 403


@pytest.mark.django_db(transaction=True)
def test_a_database_outage_is_503_with_retry_after(live, operator, database_down, bearer_headers):  # noqa: F811
    runtime = Client(headers=bearer_headers(operator, "route:read", "runtime"))
    assert runtime.get("/api/v1/route", {"agent": live.agent.slug, "key": "k"}).status_code == 200
    routing_cache_clear()  # as a freshly started web process: it must read the routing generation
    database_down()
    response = runtime.get("/api/v1/route", {"agent": live.agent.slug, "key": "k"})
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response.json() == {"detail": "the database is unavailable; retry shortly"}
