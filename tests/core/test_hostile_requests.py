"""The hand-made hostile requests of issue 11 that the per-app tests do not already cover (those:
tests/telemetry/test_hostile_events.py for bad events, tests/core/test_outages.py and
tests/rollouts/test_routing_outage.py for outages, tests/core/test_csrf.py, the audit chain's tests,
tests/core/test_signin_throttling.py, tests/core/test_content_security.py). Each is answered 4xx,
stores nothing, and leaves every later read working, on SQLite and on PostgreSQL alike
(rolloutops/inputs.py, rolloutops.middleware.HostileInput)."""
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from agents.models import Agent
from escalations.models import EscalationTicket
from rolloutops.models import AuditEntry
from telemetry.fold import events_fold
from telemetry.models import Event
from tests.factories import AgentFactory, AgentVersionFactory
from tests.telemetry.factories import rollout_with_history

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(api_client_for, operator):
    client = api_client_for(operator)
    client.raise_request_exception = False
    return client


@pytest.fixture
def rita(api_client_for, reviewer):
    client = api_client_for(reviewer)
    client.raise_request_exception = False
    return client


@pytest.fixture
def signed_in():
    def make(user):
        client = Client(raise_request_exception=False)
        client.force_login(user)
        return client

    return make


def _post_json(client, path, raw: str):
    """A raw JSON text (NaN, Infinity and lone surrogates cannot be written with json.dumps)."""
    return client.generic("POST", path, raw, content_type="application/json",
                          headers={"Authorization": f"Bearer {client.token}"})


def _ticket_body(slug: str, key: str, context: str) -> str:
    return (f'{{"agent": "{slug}", "request_key": "{key}", "reason": "low_confidence", "priority": "P2", '
            f'"context": {context}}}')


# 7. A day that does not exist, on the audit API and page.

@pytest.mark.parametrize("query", ["since=2026-02-30", "until=2026-13-01", "since=2026-2-3x", "until=99999-01-01"])
def test_a_day_that_does_not_exist_is_422_on_the_audit_api(ops, query):
    response = ops.get(f"/api/v1/audit?{query}")
    assert response.status_code == 422, response.content
    field = query.split("=")[0]
    assert response.json()["field"] == field and "YYYY-MM-DD" in response.json()["detail"]


def test_a_day_that_does_not_exist_is_the_400_page_on_the_audit_page(signed_in, operator):
    response = signed_in(operator).get("/audit/?since=2026-02-30")
    assert response.status_code == 400
    assert b"since must be a date that exists" in response.content
    assert signed_in(operator).get("/audit/?since=2026-02-28").status_code == 200


def test_a_real_day_still_filters_the_audit_trail(ops, operator):
    AgentFactory(slug="filtered")
    today = timezone.localdate().isoformat()
    assert ops.get(f"/api/v1/audit?since={today}&until={today}").json()["count"] >= 1
    assert ops.get("/api/v1/audit?until=2000-01-01").json()["count"] == 0


# 7. NUL in query strings, paths, cookies and form fields: 400, before any query runs.

@pytest.mark.parametrize("path", [
    "/audit/?q=%00", "/audit/?action=a%00b", "/agents/?q=%00", "/agents/?team=x%00", "/rollouts/?agent=%00",
    "/rollouts/?state=%00", "/audit/?since=%00",
])
def test_nul_in_a_page_query_string_is_400(signed_in, operator, path, django_assert_max_num_queries):
    client = signed_in(operator)
    with django_assert_max_num_queries(0):
        response = client.get(path)
    assert response.status_code == 400
    assert b"NUL" in response.content


def test_nul_in_the_escalation_queue_query_is_400(signed_in, reviewer):
    assert signed_in(reviewer).get("/escalations/?agent=%00").status_code == 400


def test_nul_in_the_audit_export_is_400_not_a_stream_cut_short(signed_in, operator):
    response = signed_in(operator).get("/audit/export.csv?action=%00")
    assert response.status_code == 400
    assert not response.streaming
    complete = signed_in(operator).get("/audit/export.csv?action=token")
    assert complete.status_code == 200
    assert b"".join(complete.streaming_content).startswith(b"id,at,actor")


@pytest.mark.parametrize("path", ["/api/v1/audit?action=%00", "/api/v1/agents?q=%00", "/api/v1/rollouts?agent=a%00",
                                  "/api/v1/route?agent=x&key=k%00", "/api/v1/audit?%00=1"])
def test_nul_in_an_api_query_string_is_a_json_400(ops, path):
    response = ops.get(path)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "NUL" in response.json()["detail"]


def test_nul_in_a_path_is_400(signed_in, operator, ops):
    AgentFactory(slug="bot")
    assert signed_in(operator).get("/agents/bot%00/").status_code == 400
    assert ops.get("/api/v1/agents/bot%00").status_code == 400
    assert ops.get("/api/v1/agents/bot").status_code == 200


def test_nul_in_a_cookie_is_400(operator):
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = "abc\x00def"
    assert client.get("/agents/").status_code == 400


def test_nul_in_a_form_field_is_400_and_registers_nothing(signed_in, operator):
    response = signed_in(operator).post("/agents/new/", {"slug": "nul-bot", "name": "a\x00b", "owner_team": "t"})
    assert response.status_code == 400
    assert not Agent.objects.filter(slug="nul-bot").exists()
    assert signed_in(operator).post("/agents/new/", {"slug": "nul-bot", "name": "ab", "owner_team": "t"}).status_code == 302


# JSON bodies of the control plane: unstorable text, NaN/Infinity, depth.

@pytest.mark.parametrize("name", ['"a\\u0000b"', '"\\ud800"', '"ok"'])
def test_unstorable_text_in_a_json_body_is_422_naming_where(ops, name):
    response = _post_json(ops, "/api/v1/agents", f'{{"slug": "text-bot", "name": {name}, "owner_team": "t"}}')
    if name == '"ok"':
        assert response.status_code == 201
        return
    assert response.status_code == 422, response.content
    assert response.json()["field"] == "body.name"
    assert not Agent.objects.filter(slug="text-bot").exists()


def test_a_key_with_a_nul_is_422(ops):
    response = _post_json(ops, "/api/v1/agents", '{"slug": "k", "name": "n", "owner_team": "t", "x\\u0000": 1}')
    assert response.status_code == 422
    assert "a key" in response.json()["field"]


# 7. An escalation's context nested 900 deep; Infinity and NaN in it (on SQLite they were stored and
# then broke the list).

def test_escalation_context_nested_900_deep_is_422_and_the_queue_still_reads(ops, rita):
    agent = AgentFactory(slug="deep-bot")
    deep = "[" * 900 + "]" * 900
    response = _post_json(ops, "/api/v1/escalations", _ticket_body(agent.slug, "deep", f'{{"input": {deep}}}'))
    assert response.status_code == 422, response.content
    assert "nested deeper than" in response.json()["detail"]
    assert not EscalationTicket.objects.exists()
    ok = _post_json(ops, "/api/v1/escalations", _ticket_body(agent.slug, "shallow", '{"input": [[["fine"]]]}'))
    assert ok.status_code == 201
    assert rita.get("/api/v1/escalations?context=true").json()["count"] == 1


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "1e999"])
def test_infinity_or_nan_in_an_escalation_context_is_422_and_the_queue_still_reads(ops, rita, signed_in, reviewer,
                                                                                    value):
    agent = AgentFactory(slug="inf-bot")
    good = _post_json(ops, "/api/v1/escalations", _ticket_body(agent.slug, "good", '{"input": 1}'))
    assert good.status_code == 201
    response = _post_json(ops, "/api/v1/escalations",
                          _ticket_body(agent.slug, "bad", f'{{"input": {{"score": {value}}}, "confidence": 0.5}}'))
    assert response.status_code == 422, response.content
    assert EscalationTicket.objects.count() == 1
    listed = rita.get("/api/v1/escalations?context=true")
    assert listed.status_code == 200 and listed.json()["count"] == 1
    assert signed_in(reviewer).get("/escalations/").status_code == 200


# 7. Huge offsets, ids and page numbers.

@pytest.mark.parametrize("query", ["offset=99999999999999999999", "offset=9223372036854775807", "offset=-1",
                                   "offset=Infinity", "limit=Infinity", "offset=1e3"])
def test_an_offset_no_database_can_use_is_422_on_the_escalations_list(rita, query):
    AgentFactory(slug="q-bot")
    response = rita.get(f"/api/v1/escalations?{query}")
    assert response.status_code == 422, response.content
    assert rita.get("/api/v1/escalations?offset=1000000").status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/audit?before_id=99999999999999999999",
                                  "/api/v1/audit?before_id=9223372036854775808", "/api/v1/audit?before_id=0"])
def test_an_id_beyond_64_bits_is_422(ops, path):
    assert ops.get(path).status_code == 422


@pytest.mark.parametrize("page", ["99999999999999999999", "9223372036854775807", "-5", "abc", "1e9"])
def test_a_page_number_past_any_end_shows_a_page(signed_in, operator, reviewer, page):
    assert signed_in(operator).get(f"/audit/?page={page}").status_code == 200
    assert signed_in(operator).get(f"/agents/?page={page}").status_code == 200
    assert signed_in(reviewer).get(f"/escalations/?page={page}").status_code == 200


# 1. The year-9999 event: refused for its index, the batch's valid events kept, every read still works.

def test_the_year_9999_event_costs_nothing_and_breaks_no_later_read(api_client_for, operator, manager, signed_in):
    rollout = rollout_with_history()
    slug = rollout.agent.slug
    now = timezone.now()

    def event(key, **extra):
        return {"agent": slug, "request_key": key, "kind": "agent", "label": "approve",
                "occurred_at": (now - timedelta(minutes=1)).isoformat(), **extra}

    batch = {"events": [event("before"), event("p", label="x", occurred_at="9999-12-31T23:59:59-14:00"),
                        event("after")]}
    runtime = api_client_for(operator, "events:write")
    response = runtime.post("/api/v1/events", batch)
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 2
    assert [e["index"] for e in response.json()["errors"]] == [1]
    assert set(Event.objects.values_list("request_key", flat=True)) >= {"before", "after"}
    assert not Event.objects.filter(request_key="p").exists()

    events_fold()
    assert signed_in(operator).get(f"/rollouts/{rollout.pk}/").status_code == 200
    assert signed_in(manager).get("/rollouts/approvals/").status_code == 200
    assert signed_in(operator).get("/metrics").status_code == 200


# 5. An agent whose open rollout is of an older version than its newest.

def test_agent_whose_open_rollout_is_not_of_its_newest_version_reads(ops, operator):
    rollout = rollout_with_history()
    newest = AgentVersionFactory(agent=rollout.agent, version="9.9.9", created_at=timezone.now() + timedelta(seconds=1))
    response = ops.get(f"/api/v1/agents/{rollout.agent.slug}")
    assert response.status_code == 200, response.content
    assert response.json()["latest_version"] == newest.version
    assert response.json()["active_rollout"]["id"] == rollout.pk
    assert response.json()["active_rollout"]["version"] == rollout.version.version != newest.version


def test_refusals_at_the_door_write_no_audit_entry(ops):
    before = AuditEntry.objects.count()
    _post_json(ops, "/api/v1/agents", '{"slug": "s", "name": "\\u0000", "owner_team": "t"}')
    ops.get("/api/v1/audit?action=%00")
    assert AuditEntry.objects.count() == before
    assert json.loads(ops.get("/api/v1/audit").content)["count"] == before


def test_a_form_or_multipart_body_sent_to_a_json_endpoint_is_a_4xx(ops):
    multipart = ops.generic("POST", "/api/v1/agents", b"--b\r\nContent-Disposition: form-data; name=\"slug\"\r\n\r\nx\r\n--b--\r\n",
                            content_type="multipart/form-data; boundary=b", headers={"Authorization": f"Bearer {ops.token}"})
    assert 400 <= multipart.status_code < 500
    form = ops.generic("POST", "/api/v1/agents", "slug=x&name=%00", content_type="application/x-www-form-urlencoded",
                       headers={"Authorization": f"Bearer {ops.token}"})
    assert form.status_code == 400
    assert not Agent.objects.filter(slug="x").exists()
