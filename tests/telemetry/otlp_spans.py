"""Spans made by the real OpenTelemetry SDK, encoded by its OTLP exporter's own encoder, for the OTLP
ingestion tests; and the OTLP/JSON form of the same request."""
from __future__ import annotations

import base64
import json

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

PROTOBUF = "application/x-protobuf"


class Recorder:
    """A tracer whose finished spans are kept in memory: `recorder.request()` is the export request
    the OTLP/HTTP exporter would send for them."""

    def __init__(self, **resource):
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create(resource))
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = self.provider.get_tracer("tests.otlp")

    @property
    def spans(self):
        return self.memory.get_finished_spans()

    def request(self):
        return encode_spans(self.spans)

    def protobuf(self) -> bytes:
        return self.request().SerializeToString()

    def json(self) -> bytes:
        return json.dumps(otlp_json(self.request())).encode()

    def decision(self, key, *, label="approve", tools=(), attributes=None, error=None):
        """One decision span with a child span per tool (a tool given as (name, error) fails)."""
        with self.tracer.start_as_current_span(f"invoke_agent {key}") as span:
            span.set_attribute("rolloutops.request_key", key)
            if label is not None:
                span.set_attribute("rolloutops.label", label)
            for name, value in (attributes or {}).items():
                span.set_attribute(name, value)
            for tool in tools:
                name, failure = tool if isinstance(tool, tuple) else (tool, None)
                with self.tracer.start_as_current_span(f"execute_tool {name}") as child:
                    child.set_attribute("gen_ai.operation.name", "execute_tool")
                    child.set_attribute("gen_ai.tool.name", name)
                    child.set_attribute("gen_ai.tool.call.arguments", json.dumps({"key": key}))
                    if failure:
                        child.set_status(Status(StatusCode.ERROR, failure))
            if error:
                span.set_status(Status(StatusCode.ERROR, error))
        return span


def otlp_json(request) -> dict:
    """The OTLP/JSON encoding (OTLP specification, "JSON Protobuf Encoding"): the protobuf JSON mapping
    with lowerCamelCase names and integer enums, except that trace and span ids are hex, not base64."""
    data = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in data.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex()
    return data
