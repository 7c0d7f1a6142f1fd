"""POST /api/v1/otlp/v1/traces: spans made by the OpenTelemetry SDK become decisions (docs/otlp.md),
answered as an OTLP collector answers, with the validation and idempotency of POST /events."""
import gzip
import json
import zlib
from datetime import datetime, timezone

import pytest
from django.urls import reverse
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from agents.readiness import automatic_checks
from telemetry.models import Event
from tests.factories import AgentVersionFactory

from .otlp_spans import PROTOBUF, Recorder

pytestmark = pytest.mark.django_db

URL = "/api/v1/otlp/v1/traces"
JSON = "application/json"


def _post(client, body, content_type=PROTOBUF, **headers):
    return client.generic("POST", URL, body, content_type=content_type, headers=client._headers(headers))


def _response(response) -> ExportTraceServiceResponse:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == PROTOBUF
    return ExportTraceServiceResponse.FromString(response.content)


@pytest.fixture
def recorder(shadow_rollout):
    return Recorder(**{"service.name": shadow_rollout.agent.slug})


def test_a_decision_span_and_its_tool_calls_become_one_event_with_its_steps(events_client, shadow_rollout, recorder):
    span = recorder.decision("claim-1", label="reject", tools=["lookup_policy", ("fraud_signals", "timeout after 5 s")],
                             attributes={"gen_ai.agent.version": shadow_rollout.version.version,
                                         "rolloutops.segment": "motor", "rolloutops.confidence": 0.82,
                                         "rolloutops.input_hash": "in-77"})
    answer = _response(_post(events_client, recorder.protobuf()))
    assert not answer.HasField("partial_success")

    event = Event.objects.get()
    assert (event.agent_id, event.version_id, event.request_key, event.kind, event.label, event.outcome) == (
        shadow_rollout.agent_id, shadow_rollout.version_id, "claim-1", "agent", "reject", "ok")
    assert (event.segment, event.confidence, event.input_hash) == ("motor", 0.82, "in-77")
    assert (event.rollout_id, event.stage) == (shadow_rollout.pk, "shadow")
    assert event.latency_ms == pytest.approx((span.end_time - span.start_time) / 1e6, abs=0.001)
    ended = datetime.fromtimestamp(span.end_time / 1e9, timezone.utc)
    assert abs((event.occurred_at - ended).total_seconds()) < 1e-3
    steps = event.trace["steps"]
    assert [s["tool"] for s in steps] == ["lookup_policy", "fraud_signals"]
    assert steps[0]["operation"] == "execute_tool" and steps[0]["arguments"] == {"key": "claim-1"}
    assert "error" not in steps[0] and steps[1]["error"] == "timeout after 5 s"
    assert all(s["duration_ms"] >= 0 for s in steps)
    assert event.trace["trace_id"] == format(span.context.trace_id, "032x")
    assert event.has_trace


def test_without_a_version_the_decision_is_the_version_routing_gave_the_request(events_client, shadow_rollout, recorder):
    # People act on this agent's requests in shadow: the version deciding beside them is the candidate.
    recorder.decision("claim-2")
    _response(_post(events_client, recorder.protobuf()))
    assert Event.objects.get().version_id == shadow_rollout.version_id


def test_the_resource_names_the_agent_and_version_unless_the_span_does(events_client, shadow_rollout):
    other = AgentVersionFactory(agent=shadow_rollout.agent, version="7.0.0")
    recorder = Recorder(**{"service.name": "a-runtime-service", "service.version": other.version})
    recorder.decision("claim-3", attributes={"gen_ai.agent.name": shadow_rollout.agent.slug})
    _response(_post(events_client, recorder.protobuf()))
    event = Event.objects.get()
    assert (event.agent_id, event.version_id) == (shadow_rollout.agent_id, other.pk)


def test_an_error_status_is_an_error_outcome_and_an_attribute_may_say_escalated(events_client, recorder):
    recorder.decision("claim-4", label=None, error="model unavailable")
    recorder.decision("claim-5", label="approve", attributes={"rolloutops.outcome": "escalated"})
    recorder.decision("claim-6", label="approve", attributes={"rolloutops.outcome": "timeout"}, error="deadline")
    _response(_post(events_client, recorder.protobuf()))
    stored = {e.request_key: (e.outcome, e.label) for e in Event.objects.all()}
    assert stored == {"claim-4": ("error", "error"), "claim-5": ("escalated", "approve"),
                      "claim-6": ("timeout", "approve")}


def test_a_human_decision_comes_from_rolloutops_kind(events_client, shadow_rollout):
    review_tool = Recorder(**{"service.name": "review-desk", "rolloutops.kind": "human"})
    review_tool.decision("claim-7", label="approve", attributes={"gen_ai.agent.name": shadow_rollout.agent.slug})
    _response(_post(events_client, review_tool.protobuf()))
    event = Event.objects.get()
    assert (event.kind, event.version_id, event.label) == ("human", None, "approve")


def test_spans_without_a_request_key_are_not_decisions(events_client, recorder):
    with recorder.tracer.start_as_current_span("GET /health"):
        pass
    answer = _response(_post(events_client, recorder.protobuf()))
    assert not answer.HasField("partial_success")
    assert not Event.objects.exists()


def test_a_nested_decision_keeps_its_own_steps(events_client, recorder, shadow_rollout):
    with recorder.tracer.start_as_current_span("handle request") as outer:
        outer.set_attribute("rolloutops.request_key", "claim-8")
        outer.set_attribute("rolloutops.kind", "human")
        outer.set_attribute("rolloutops.label", "approve")
        with recorder.tracer.start_as_current_span("shadow candidate") as inner:
            inner.set_attribute("rolloutops.request_key", "claim-8")
            inner.set_attribute("rolloutops.label", "reject")
            with recorder.tracer.start_as_current_span("execute_tool lookup_policy") as tool:
                tool.set_attribute("gen_ai.tool.name", "lookup_policy")
    _response(_post(events_client, recorder.protobuf()))
    human, agent = Event.objects.get(kind="human"), Event.objects.get(kind="agent")
    assert human.trace is None and not human.has_trace
    assert [s["tool"] for s in agent.trace["steps"]] == ["lookup_policy"]


def test_re_exporting_the_same_spans_stores_nothing_twice(events_client, recorder):
    for i in range(5):
        recorder.decision(f"claim-{i}", tools=["lookup_policy"])
    body = recorder.protobuf()
    _response(_post(events_client, body))
    answer = _response(_post(events_client, body))
    assert not answer.HasField("partial_success")
    assert Event.objects.count() == 5


def test_spans_that_cannot_be_stored_are_counted_as_rejected_with_their_reasons(events_client, recorder, shadow_rollout):
    recorder.decision("good-1")
    recorder.decision("no-label", label=None)
    recorder.decision("bad-kind", attributes={"rolloutops.kind": "robot"})
    recorder.decision("bad-agent", attributes={"gen_ai.agent.name": "no-such-agent"})
    recorder.decision("bad-confidence", attributes={"rolloutops.confidence": 3.5})
    recorder.decision("good-2")
    anonymous = Recorder()  # the SDK's default service.name, "unknown_service:python", names no agent
    anonymous.decision("anon")
    nameless = anonymous.request()
    del nameless.resource_spans[0].resource.attributes[:]

    answer = _response(_post(events_client, recorder.protobuf()))
    assert answer.partial_success.rejected_spans == 4
    message = answer.partial_success.error_message
    assert message.startswith("4 of 6 decision span(s) rejected")
    for expected in ("'no-label'): label is required", "'bad-kind'): kind must be", "unknown agent 'no-such-agent'",
                     "'bad-confidence'): confidence must be between"):
        assert expected in message
    assert set(Event.objects.values_list("request_key", flat=True)) == {"good-1", "good-2"}

    for body in (nameless.SerializeToString(), anonymous.protobuf()):
        answer = _response(_post(events_client, body))
        assert answer.partial_success.rejected_spans == 1
        assert "'anon'): no agent: set gen_ai.agent.name on the span or service.name on its resource" in \
            answer.partial_success.error_message
    assert "not the SDK's default 'unknown_service:python'" in answer.partial_success.error_message


def test_json_bodies_are_read_and_answered_in_json(events_client, recorder):
    recorder.decision("claim-j1", tools=["lookup_policy"])
    recorder.decision("claim-j2", label=None)
    response = _post(events_client, recorder.json(), content_type=JSON)
    assert response.status_code == 200 and response["Content-Type"] == JSON
    assert response.json() == {"partialSuccess": {"rejectedSpans": 1, "errorMessage": response.json()
                                                  ["partialSuccess"]["errorMessage"]}}
    event = Event.objects.get()
    assert event.request_key == "claim-j1" and event.trace["steps"][0]["tool"] == "lookup_policy"
    # The ids are the span's own: hex in OTLP/JSON, never read as base64.
    span = next(s for s in recorder.spans if s.attributes.get("rolloutops.request_key") == "claim-j1")
    assert event.trace["span_id"] == format(span.context.span_id, "016x")


def test_a_json_request_written_by_hand_as_the_specification_shows(events_client, shadow_rollout):
    end = int(datetime.now(timezone.utc).timestamp() * 1e9)
    body = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": shadow_rollout.agent.slug}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "parentSpanId": "",
             "name": "decide", "kind": 1, "startTimeUnixNano": str(end - 250_000_000), "endTimeUnixNano": str(end),
             "attributes": [{"key": "rolloutops.request_key", "value": {"intValue": "9912"}},
                            {"key": "rolloutops.label", "value": {"stringValue": "approve"}},
                            {"key": "rolloutops.confidence", "value": {"doubleValue": 0.93}}],
             "status": {}},
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b175",
             "parentSpanId": "eee19b7ec3c1b174", "name": "execute_tool crm", "startTimeUnixNano": str(end - 200_000_000),
             "endTimeUnixNano": str(end - 100_000_000), "status": {"code": 2, "message": "crm down"},
             "attributes": [{"key": "gen_ai.tool.name", "value": {"stringValue": "crm.lookup"}}],
             "someFutureField": True},
        ]}],
    }]}
    response = _post(events_client, json.dumps(body).encode(), content_type=JSON)
    assert response.status_code == 200 and response.json() == {}
    event = Event.objects.get()
    assert (event.request_key, event.label, event.confidence, event.latency_ms) == ("9912", "approve", 0.93, 250.0)
    assert event.trace == {"steps": [{"tool": "crm.lookup", "error": "crm down", "duration_ms": 100.0}],
                           "trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174"}


@pytest.mark.parametrize("encoding, compress", [("gzip", gzip.compress), ("deflate", zlib.compress),
                                                ("deflate", lambda b: zlib.compress(b, wbits=-15))])
def test_compressed_bodies_are_accepted(events_client, recorder, encoding, compress):
    recorder.decision("claim-z")
    _response(_post(events_client, compress(recorder.protobuf()), **{"Content-Encoding": encoding}))
    assert Event.objects.filter(request_key="claim-z").exists()


def _status(response, content_type=PROTOBUF):
    if content_type == PROTOBUF:
        return status_pb2.Status.FromString(response.content).message
    return response.json()["message"]


@pytest.mark.parametrize("body, content_type, headers, expected", [
    (b"\xff\xff\xff not protobuf", PROTOBUF, {}, "not an OTLP protobuf export request"),
    (b"{not json", JSON, {}, "not JSON"),
    (b"[1, 2]", JSON, {}, "is a JSON object"),
    (json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "xyz"}]}]}]}).encode(), JSON, {},
     "spanId is not a hex string"),
    (json.dumps({"resourceSpans": "many"}).encode(), JSON, {}, "resourceSpans must be an array"),
    (json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}).encode(), JSON, {},
     "not an OTLP/JSON export request"),
    (b"\x1f\x8b not gzip", PROTOBUF, {"Content-Encoding": "gzip"}, "not valid gzip"),
    (gzip.compress(b"x" * 100)[:-8], PROTOBUF, {"Content-Encoding": "gzip"}, "truncated"),
])
def test_an_undecodable_body_is_400_with_a_status_in_the_requests_encoding(events_client, body, content_type, headers,
                                                                          expected):
    response = _post(events_client, body, content_type=content_type, **headers)
    assert response.status_code == 400
    assert response["Content-Type"] == content_type
    assert expected in _status(response, content_type)
    assert not Event.objects.exists()


def test_another_content_type_or_encoding_is_415(events_client, recorder):
    recorder.decision("claim-x")
    response = _post(events_client, recorder.protobuf(), content_type="text/plain")
    assert response.status_code == 415 and "text/plain" in _status(response, JSON)
    response = _post(events_client, recorder.protobuf(), **{"Content-Encoding": "br"})
    assert response.status_code == 415 and "'br' is not supported" in _status(response)
    assert not Event.objects.exists()


def test_a_body_over_the_limit_is_413_compressed_or_not(events_client, recorder, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    for i in range(40):
        recorder.decision(f"claim-{i}", tools=["lookup_policy", "fraud_signals"])
    body = recorder.protobuf()
    assert len(body) > 4096
    response = _post(events_client, body)
    assert response.status_code == 413 and "larger than 4,096 bytes" in _status(response)
    # A small gzip body that expands past the limit is refused without expanding it all.
    bomb = gzip.compress(b"\x00" * 2_000_000)
    assert len(bomb) < 4096
    response = _post(events_client, bomb, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413 and "decompressed body is larger" in _status(response)
    assert not Event.objects.exists()


def test_it_is_authorized_exactly_like_post_events(api_client_for, operator, reviewer, recorder, client):
    recorder.decision("claim-a")
    body = recorder.protobuf()
    assert _post(api_client_for(operator, "route:read"), body).status_code == 403
    assert _post(api_client_for(reviewer, "events:write"), body).status_code == 403
    assert _post(api_client_for(reviewer, "user"), body).status_code == 403
    assert client.generic("POST", URL, body, content_type=PROTOBUF).status_code == 401
    assert not Event.objects.exists()
    assert _post(api_client_for(operator, "user"), body).status_code == 200
    assert Event.objects.count() == 1


def test_steps_from_spans_count_for_trace_coverage_and_show_on_the_pair_page(events_client, recorder, shadow_rollout,
                                                                              operator, client):
    for i in range(100):
        recorder.decision(f"cover-{i}", tools=["lookup_policy"] if i % 10 else [])
    _response(_post(events_client, recorder.protobuf()))
    coverage = next(c for c in automatic_checks(version=shadow_rollout.version)
                    if c.key == "observability.trace_coverage")
    assert (coverage.samples, coverage.measured) == (100, 0.9)

    client.force_login(operator)
    page = client.get(reverse("rollouts:pair", args=[shadow_rollout.pk, "cover-1"]))
    assert page.status_code == 200
    assert "lookup_policy" in page.content.decode() and "execute_tool" in page.content.decode()
