"""POST /api/v1/events: its usual call is answered by a plain view ahead of django-ninja, everything
else by the operation (console/api.py). Every case here is asked of both, against the same database,
and must get the same status, content type and body."""
import json
from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client

import console.api as console_api
from telemetry.models import Event
from telemetry.services import MAX_BATCH
from tests.factories import UserFactory
from tests.served_first import served_and_specified
from tests.telemetry.factories import T0

pytestmark = pytest.mark.django_db

PATH = "/api/v1/events"


def _both(client, body, headers=None, **how):
    return served_and_specified(client, PATH, body, headers, **how)


def _event(slug, key, **extra):
    return {"agent": slug, "request_key": key, "kind": "agent", "label": "approve",
            "occurred_at": (T0 + timedelta(hours=2)).isoformat(), **extra}


def test_the_served_batch_answers_as_the_specified_operation(shadow_rollout, operator, reviewer, bearer_headers):
    slug = shadow_rollout.agent.slug
    runtime = bearer_headers(operator, "events:write", "runtime")
    tokens = {"route-only": bearer_headers(operator, "route:read", "route"),
              "no-role": bearer_headers(UserFactory(username="nobody", roles=[]), "events:write", "nobody"),
              "reviewer": bearer_headers(reviewer, "events:write", "rita")}
    good = json.dumps({"events": [_event(slug, "k1"), _event(slug, "k1", kind="human"), _event(slug, "k1")]})
    mixed = json.dumps({"events": [_event(slug, "k2"), _event(slug, "k3", kind="robot"), "no", _event("ghost", "k4"),
                                   _event(slug, "k5", confidence=3), {**_event(slug, "k6"), "occurred_at": "soon"}]})
    nul = json.dumps({"events": [_event(slug, "k7", label="a\u0000b"), _event(slug, "k8")]})
    cases = [
        (good, runtime), (mixed, runtime), (nul, runtime), (b'{"events": []}', runtime),
        (json.dumps({"events": [_event(slug, f"m{i}") for i in range(MAX_BATCH + 1)]}), runtime),  # 413
        (b"{not json", runtime), (b"[]", runtime), (b'{"events": 5}', runtime), (b"", runtime),
        (good, tokens["route-only"]), (good, tokens["no-role"]), (good, tokens["reviewer"]),
        (good, {"Authorization": "Bearer rlo_not-a-token"}), (good, {"Authorization": "Basic b2xpdmlhOnB3"}),
        (good, {"Authorization": runtime["Authorization"].replace("Bearer", "bearer")}), (good, {}),
    ]
    client = Client()
    statuses, answered_by_the_view = set(), []
    serve = console_api._events_served

    def spy(request):
        try:
            answer = serve(request)
        except Exception:
            answered_by_the_view.append(True)  # the view's call, answered by the API's handlers
            raise
        answered_by_the_view.append(answer is not None)
        return answer

    for body, headers in cases:
        with mock.patch.object(console_api, "_events_served", spy):
            served, specified = _both(client, body, headers)
        assert served == specified, (body[:80], headers)
        statuses.add(served[0])
    assert statuses == {200, 401, 403, 413, 422}
    # A token that may write events reached the view with every JSON body, its errors answered by
    # the API's handlers; no body (so no content type), a token without the scope or whose owner
    # lacks the role, none or an unknown one went to django-ninja. Both accept "bearer" in lower case.
    assert answered_by_the_view == [True] * 8 + [False] * 6 + [True, False]
    for content_type, body in (("text/plain", good), ("application/x-www-form-urlencoded", "a=1"),
                               ("application/json; charset=utf-8", good)):
        served, specified = _both(client, body, runtime, content_type=content_type)
        assert served == specified, content_type
    for method in ("get", "put", "delete", "head", "options"):
        served, specified = _both(client, b"", runtime, method=method)
        assert served == specified and served[0] == 405, method


def test_a_signed_in_operator_gets_the_same_answer_with_and_without_csrf(shadow_rollout, operator):
    body = json.dumps({"events": [_event(shadow_rollout.agent.slug, "b1")]})
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)
    served, specified = _both(browser, body)
    assert served == specified and served[0] == 403 and b"CSRF" in served[2]
    browser.get("/rollouts/")  # a page sets the CSRF cookie
    served, specified = _both(browser, body, {"X-CSRFToken": browser.cookies["csrftoken"].value})
    assert served == specified and served[0] == 200


def test_the_served_batch_is_stored_and_queued(shadow_rollout, events_client):
    slug = shadow_rollout.agent.slug
    answer = events_client.post(PATH, {"events": [_event(slug, "q1"), _event(slug, "q1", kind="human")]})
    assert answer.status_code == 200 and answer.json() == {"accepted": 2, "duplicates": 0, "errors": []}
    assert Event.objects.filter(request_key="q1").count() == 2
