"""An agent instrumented with OpenTelemetry, reporting to rolloutops with no rolloutops code: its spans
go through the standard OTLP/HTTP exporter to POST /api/v1/otlp/v1/traces (docs/otlp.md).

    pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http
    python examples/otel_agent.py --url http://127.0.0.1:8000 --token rlo_… --agent kyc-document-checker \\
        --version 0.9.2 --requests 50 --people

Each request is one `invoke_agent` span (GenAI semantic conventions) carrying `rolloutops.request_key`
and the decision (`rolloutops.label`, `.confidence`, `.segment`, `.input_hash`); its child spans — a
tool call, a model call — become the decision's trace steps. The token needs `events:write` and an
owner with the operator role. Run it beside a shadow rollout, have people decide the same request
keys (`--people` does it here, through an instrumented review desk), and the pairs appear on the
rollout's shadow page.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import time

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode

LABELS = ("approve", "reject", "request_info")
SEGMENTS = ("passport-eu", "id-card-eu", "driving-licence")
MODEL = "doc-checker-7b"


class CountingExporter(OTLPSpanExporter):
    """The OTLP exporter, counting the spans it could not deliver (the SDK only logs them)."""

    failed = 0

    def export(self, spans):
        result = super().export(spans)
        if result is not SpanExportResult.SUCCESS:
            self.failed += len(spans)
        return result


def tracer_provider(url: str, token: str, *, agent: str, version: str, gzip: bool = False,
                    kind: str = "agent") -> tuple[TracerProvider, CountingExporter]:
    """The standard SDK set-up; only the endpoint and the header are rolloutops'. The resource names the
    agent and its version (service.name / service.version), so spans need not repeat them."""
    exporter = CountingExporter(endpoint=f"{url.rstrip('/')}/api/v1/otlp/v1/traces",
                                headers={"Authorization": f"Bearer {token}"},
                                compression=Compression.Gzip if gzip else None)
    provider = TracerProvider(resource=Resource.create({"service.name": agent, "service.version": version,
                                                        "rolloutops.kind": kind}))
    # The batch processor exports a finished request's spans together, so its tool calls arrive
    # with it and become its steps (a span-by-span processor would send them alone).
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    return provider, exporter


def decide(key: str) -> tuple[str, float, str]:
    """The model, simulated: a label, a confidence and a segment that depend on the request only."""
    digest = hashlib.sha256(key.encode()).digest()
    return LABELS[digest[0] % 3], round(0.6 + digest[1] / 255 * 0.39, 2), SEGMENTS[digest[2] % 3]


def handle(tracer, agent: str, key: str, *, pause_s: float, rng: random.Random) -> str:
    """One request, as an instrumented agent handles it."""
    label, confidence, segment = decide(key)
    with tracer.start_as_current_span(f"invoke_agent {agent}") as span:
        span.set_attribute("gen_ai.operation.name", "invoke_agent")
        span.set_attribute("gen_ai.agent.name", agent)
        span.set_attribute("rolloutops.request_key", key)
        span.set_attribute("rolloutops.segment", segment)
        span.set_attribute("rolloutops.input_hash", hashlib.sha256(f"document:{key}".encode()).hexdigest()[:32])
        with tracer.start_as_current_span("execute_tool read_document") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "read_document")
            tool.set_attribute("gen_ai.tool.call.arguments", json.dumps({"request": key}))
            time.sleep(pause_s * rng.uniform(0.5, 1.5))
            tool.set_attribute("gen_ai.tool.call.result", json.dumps({"pages": 2, "mrz": True}))
        if rng.random() < 0.1:
            # A registry lookup that times out: the step shows the error, the decision goes on.
            with tracer.start_as_current_span("execute_tool sanctions_registry") as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                tool.set_attribute("gen_ai.tool.name", "sanctions_registry")
                tool.set_status(Status(StatusCode.ERROR, "registry timeout after 2 s"))
        with tracer.start_as_current_span(f"chat {MODEL}") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.request.model", MODEL)
            time.sleep(pause_s * rng.uniform(1, 3))
        span.set_attribute("rolloutops.label", label)
        span.set_attribute("rolloutops.confidence", confidence)
    return label


def review(tracer, agent: str, key: str, agent_label: str) -> str:
    """A person decides the same request at a review desk that is instrumented too: its spans say
    `rolloutops.kind=human` on their resource and name the agent whose request it is."""
    digest = hashlib.sha256(f"review:{key}".encode()).digest()
    label = agent_label if digest[0] % 10 else LABELS[(LABELS.index(agent_label) + 1) % 3]  # 1 in 10 differs
    with tracer.start_as_current_span(f"review {key}") as span:
        span.set_attribute("gen_ai.agent.name", agent)
        span.set_attribute("rolloutops.request_key", key)
        span.set_attribute("rolloutops.label", label)
    return label


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("ROLLOUTOPS_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("ROLLOUTOPS_TOKEN"),
                        help="an events:write token (default: $ROLLOUTOPS_TOKEN)")
    parser.add_argument("--agent", required=True, help="the agent's slug (sent as service.name)")
    parser.add_argument("--version", required=True, help="the version deciding (sent as service.version)")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--key-prefix", default=None, help="request keys are <prefix>-<n> (default: random)")
    parser.add_argument("--pause-ms", type=float, default=40.0, help="simulated tool and model time per call")
    parser.add_argument("--gzip", action="store_true", help="compress the export requests")
    parser.add_argument("--people", action="store_true",
                        help="people decide the same requests too (spans of an instrumented review desk), "
                             "so the pairs form on the shadow page")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token or $ROLLOUTOPS_TOKEN is required")
    prefix = args.key_prefix or f"otel-{random.randrange(16 ** 6):06x}"
    provider, exporter = tracer_provider(args.url, args.token, agent=args.agent, version=args.version, gzip=args.gzip)
    tracer = provider.get_tracer("rolloutops.examples.otel_agent")
    rng = random.Random(prefix)
    desk = None
    if args.people:
        desk, desk_exporter = tracer_provider(args.url, args.token, agent="review-desk", version="1",
                                              gzip=args.gzip, kind="human")
    labels, agreed = [], 0
    for i in range(args.requests):
        key = f"{prefix}-{i}"
        labels.append(handle(tracer, args.agent, key, pause_s=args.pause_ms / 1000, rng=rng))
        if desk is not None:
            agreed += review(desk.get_tracer("review-desk"), args.agent, key, labels[-1]) == labels[-1]
    provider.shutdown()  # flushes the batch processor: every span is exported before exit
    if desk is not None:
        desk.shutdown()
        exporter.failed += desk_exporter.failed
        print(f"people decided the same {args.requests} requests: {agreed} agree with the agent")
    print(f"{len(labels)} decisions of {args.agent} {args.version} as spans, keys {prefix}-0…"
          f"{prefix}-{args.requests - 1}: " + ", ".join(f"{label} {labels.count(label)}" for label in LABELS))
    if exporter.failed:
        print(f"{exporter.failed} span(s) could not be exported (see the exporter's log above)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
