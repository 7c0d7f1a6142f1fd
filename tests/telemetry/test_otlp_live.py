"""The real OpenTelemetry OTLP/HTTP exporter against the live server: protobuf (its default), gzip,
re-exports, and the partial-success answer an exporter receives for spans that cannot be stored."""
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult

from rolloutops.tokens import token_issue
from telemetry.models import Event
from tests.client import conftest as client_fixtures
from tests.factories import UserFactory
from tests.telemetry.factories import rollout_with_history

from .otlp_spans import PROTOBUF, Recorder

# The live server over plain HTTP, as the client's tests have it.
live_server_plain_http = client_fixtures.live_server_plain_http
live_server = client_fixtures.live_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rollout():
    return rollout_with_history()


@pytest.fixture
def token():
    return token_issue(user=UserFactory(roles=["operator"]), scopes="events:write", name="otel-agent")[1]


def _exporter(live_server, token, **options):
    return OTLPSpanExporter(endpoint=f"{live_server.url}/api/v1/otlp/v1/traces",
                            headers={"Authorization": f"Bearer {token}"}, timeout=10, **options)


@pytest.mark.parametrize("compression", [None, Compression.Gzip])
def test_the_sdk_exporter_delivers_decisions_and_a_re_export_stores_nothing_twice(live_server, token, rollout,
                                                                                  compression):
    recorder = Recorder(**{"service.name": rollout.agent.slug})
    for i in range(12):
        recorder.decision(f"doc-{i}", label="approve" if i % 3 else "reject", tools=["read_document", "chat"])
    exporter = _exporter(live_server, token, compression=compression)
    assert exporter.export(recorder.spans) is SpanExportResult.SUCCESS
    assert exporter.export(recorder.spans) is SpanExportResult.SUCCESS  # a retry after a lost answer
    exporter.shutdown()
    events = Event.objects.filter(agent=rollout.agent)
    assert events.count() == 12
    assert set(events.values_list("version_id", "rollout_id", "stage")) == {(rollout.version_id, rollout.pk, "shadow")}
    assert all([s["tool"] for s in e.trace["steps"]] == ["read_document", "chat"] for e in events)


def test_a_refused_token_fails_the_export(live_server, rollout):
    recorder = Recorder(**{"service.name": rollout.agent.slug})
    recorder.decision("doc-1")
    reviewer_token = token_issue(user=UserFactory(roles=["reviewer"]), scopes="events:write", name="x")[1]
    assert _exporter(live_server, reviewer_token).export(recorder.spans) is SpanExportResult.FAILURE
    assert _exporter(live_server, "rlo_not-a-token").export(recorder.spans) is SpanExportResult.FAILURE
    assert not Event.objects.exists()


def test_rejected_spans_are_counted_in_the_answer_the_exporter_receives(live_server, token, rollout):
    recorder = Recorder(**{"service.name": rollout.agent.slug})
    recorder.decision("ok-1")
    recorder.decision("ok-2")
    recorder.decision("unlabelled", label=None)
    recorder.decision("elsewhere", attributes={"gen_ai.agent.name": "not-registered"})
    # The bytes the exporter sends (its own encoder), posted as it posts them.
    response = httpx.post(f"{live_server.url}/api/v1/otlp/v1/traces", content=recorder.protobuf(),
                          headers={"Authorization": f"Bearer {token}", "Content-Type": PROTOBUF})
    assert response.status_code == 200 and response.headers["Content-Type"] == PROTOBUF
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 2
    assert "'unlabelled'): label is required" in partial.error_message
    assert "unknown agent 'not-registered'" in partial.error_message
    assert set(Event.objects.values_list("request_key", flat=True)) == {"ok-1", "ok-2"}

    # The same spans as OTLP/JSON: the same answer, in JSON; nothing stored twice.
    response = httpx.post(f"{live_server.url}/api/v1/otlp/v1/traces", content=recorder.json(),
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["partialSuccess"]["rejectedSpans"] == 2
    assert Event.objects.count() == 2
