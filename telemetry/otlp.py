"""OTLP trace ingestion (docs/otlp.md, "Mapping"): the decision spans of an export request become
events, stored through events_ingest, so validation and idempotency are those of POST /events; the
spans below a decision become its trace steps. Reading the request's body is otlp_wire's."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from .services import MAX_BATCH, events_ingest

log = logging.getLogger("rolloutops.telemetry")

# The attributes of docs/otlp.md ("Mapping").
REQUEST_KEY = "rolloutops.request_key"
AGENT_NAME, AGENT_VERSION = "gen_ai.agent.name", "gen_ai.agent.version"
SERVICE_NAME, SERVICE_VERSION = "service.name", "service.version"
KIND, LABEL, SEGMENT = "rolloutops.kind", "rolloutops.label", "rolloutops.segment"
CONFIDENCE, INPUT_HASH, OUTCOME = "rolloutops.confidence", "rolloutops.input_hash", "rolloutops.outcome"
# What the SDKs put in service.name when the application sets none: never an agent's slug.
SDK_DEFAULT_SERVICE = "unknown_service"
TOOL_NAME, OPERATION = "gen_ai.tool.name", "gen_ai.operation.name"
TOOL_ARGUMENTS, TOOL_RESULT = "gen_ai.tool.call.arguments", "gen_ai.tool.call.result"

# A decision's trace stays readable on the pair page and far below the 256 KiB an event may carry:
# the client's decision() keeps the same number of steps, long values are cut.
MAX_STEPS = 200
MAX_STEP_TEXT = 2_000
# How many rejection reasons the answer's error_message spells out (the count is always exact).
MAX_REASONS = 5


def _value(value):
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def _attributes(pairs) -> dict:
    return {kv.key: _value(kv.value) for kv in pairs}


@dataclass
class _Span:
    span: object  # the protobuf Span
    attributes: dict
    resource: dict

    @property
    def key(self) -> tuple[bytes, bytes]:
        return self.span.trace_id, self.span.span_id

    @property
    def is_decision(self) -> bool:
        return REQUEST_KEY in self.attributes

    def get(self, name: str):
        """An attribute of the span, else of its resource."""
        value = self.attributes.get(name)
        return self.resource.get(name) if value is None else value

    @property
    def failed(self) -> bool:
        return self.span.status.code == Status.STATUS_CODE_ERROR

    def error_text(self) -> str:
        """What went wrong, for a step: the status message, else the exception the span recorded."""
        if self.span.status.message:
            return self.span.status.message
        for event in self.span.events:
            if event.name == "exception":
                attrs = _attributes(event.attributes)
                text = ": ".join(str(attrs[k]) for k in ("exception.type", "exception.message") if attrs.get(k))
                if text:
                    return text
        return str(self.attributes.get("error.type") or "error")

    def duration_ms(self) -> float | None:
        start, end = self.span.start_time_unix_nano, self.span.end_time_unix_nano
        if not start or not end or end < start:
            return None
        return round((end - start) / 1e6, 3)


def _text(value):
    """Ids are often numbers in instrumented code; anything else is passed on for ingestion to judge."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _cut(value):
    if isinstance(value, str):
        if value[:1] in "[{":
            try:
                value = json.loads(value)  # instrumentations record structured arguments as JSON text
            except ValueError:
                pass
            else:
                return value if len(json.dumps(value)) <= MAX_STEP_TEXT else json.dumps(value)[:MAX_STEP_TEXT] + "…"
        return value if len(value) <= MAX_STEP_TEXT else value[:MAX_STEP_TEXT] + "…"
    return value


def _step(node: _Span) -> dict:
    """A child span as a trace step: the shape of the client's decision() steps and escalation attempts."""
    step: dict = {"tool": str(node.attributes.get(TOOL_NAME) or node.span.name or "step")[:200]}
    operation = node.attributes.get(OPERATION)
    if operation:
        step["operation"] = str(operation)[:100]
    for name, attribute in (("arguments", TOOL_ARGUMENTS), ("result", TOOL_RESULT)):
        if node.attributes.get(attribute) is not None:
            step[name] = _cut(node.attributes[attribute])
    if node.failed:
        step["error"] = _cut(node.error_text())
    duration = node.duration_ms()
    if duration is not None:
        step["duration_ms"] = duration
    return step


def _moment(nanos: int) -> datetime:
    seconds, rest = divmod(nanos, 1_000_000_000)
    return datetime.fromtimestamp(seconds, dt_timezone.utc) + timedelta(microseconds=rest // 1000)


class _Unmappable(Exception):
    pass


def _event(decision: _Span, steps: list[dict]) -> dict:
    """The POST /events object of one decision span (docs/otlp.md, "Mapping")."""
    agent = decision.get(AGENT_NAME) or decision.resource.get(SERVICE_NAME)
    if not agent or str(agent).startswith(SDK_DEFAULT_SERVICE):
        raise _Unmappable(f"no agent: set {AGENT_NAME} on the span or {SERVICE_NAME} on its resource"
                          + (f" (not the SDK's default {agent!r})" if agent else ""))
    end = decision.span.end_time_unix_nano
    if not end:
        raise _Unmappable("the span has no end time")
    try:
        occurred_at = _moment(end)
    except (OverflowError, OSError, ValueError):
        raise _Unmappable(f"the span's end time ({end} ns) is out of range") from None
    outcome = decision.attributes.get(OUTCOME) or ("error" if decision.failed else "ok")
    event = {
        "agent": _text(agent), "request_key": _text(decision.attributes[REQUEST_KEY]),
        "kind": decision.get(KIND) or "agent", "outcome": outcome, "occurred_at": occurred_at.isoformat(),
        # A failed decision often has no label; as with the client's decision(), the outcome names it.
        "label": _text(decision.attributes.get(LABEL)) or (outcome if outcome != "ok" else None),
    }
    version = decision.get(AGENT_VERSION) or decision.resource.get(SERVICE_VERSION)
    if version:
        event["version"] = _text(version)
    for name, attribute in (("segment", SEGMENT), ("confidence", CONFIDENCE), ("input_hash", INPUT_HASH)):
        value = decision.get(attribute)
        if value is not None:
            event[name] = _text(value) if name != "confidence" else value
    duration = decision.duration_ms()
    if duration is not None:
        event["latency_ms"] = duration
    if steps:
        # The ids lead from the pair page to the same trace in the tracing backend.
        event["trace"] = {"steps": steps, "trace_id": decision.span.trace_id.hex(),
                          "span_id": decision.span.span_id.hex()}
    return event


def _spans(export: ExportTraceServiceRequest) -> list[_Span]:
    spans = []
    for resource_spans in export.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(_Span(span, _attributes(span.attributes), resource))
    return spans


def _steps(decision: _Span, children: dict[tuple[bytes, bytes], list[_Span]]) -> list[dict]:
    """Every span below the decision in its trace (through the parent chain), in start order; a
    nested decision span is a decision of its own, and so are the spans below it."""
    found: list[_Span] = []
    stack = list(children.get(decision.key, ()))
    seen = {decision.key}
    while stack and len(found) < 10 * MAX_STEPS:
        node = stack.pop()
        if node.key in seen or node.is_decision:
            continue
        seen.add(node.key)
        found.append(node)
        stack.extend(children.get(node.key, ()))
    found.sort(key=lambda n: (n.span.start_time_unix_nano, n.span.end_time_unix_nano))
    return [_step(node) for node in found[:MAX_STEPS]]


@dataclass
class OtlpResult:
    spans: int = 0
    decisions: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def error_message(self) -> str:
        if not self.rejected:
            return ""
        more = len(self.reasons) - MAX_REASONS
        shown = "; ".join(self.reasons[:MAX_REASONS]) + (f"; and {more} more" if more > 0 else "")
        return f"{self.rejected} of {self.decisions} decision span(s) rejected: {shown}"


def _reason(decision: _Span, detail: str) -> str:
    key = decision.attributes.get(REQUEST_KEY)
    return f"span {decision.span.span_id.hex() or '?'} (request_key {str(key)[:60]!r}): {detail}"


def otlp_traces_ingest(*, export: ExportTraceServiceRequest, actor=None) -> OtlpResult:
    """Store the decisions of one export request. Spans without `rolloutops.request_key` are not
    decisions: they become the steps of the decision above them, or are ignored. A decision that
    cannot be mapped, or that ingestion refuses, is counted as rejected with its reason."""
    spans = _spans(export)
    children: dict[tuple[bytes, bytes], list[_Span]] = {}
    for node in spans:
        if node.span.parent_span_id:
            children.setdefault((node.span.trace_id, node.span.parent_span_id), []).append(node)
    result = OtlpResult(spans=len(spans))
    mapped: list[tuple[_Span, dict]] = []
    for node in spans:
        if not node.is_decision:
            continue
        result.decisions += 1
        try:
            mapped.append((node, _event(node, _steps(node, children))))
        except _Unmappable as exc:
            result.reasons.append(_reason(node, str(exc)))
    for start in range(0, len(mapped), MAX_BATCH):
        chunk = mapped[start:start + MAX_BATCH]
        stored = events_ingest(events=[event for _, event in chunk], actor=actor)
        result.accepted += stored.accepted
        result.duplicates += stored.duplicates
        result.reasons += [_reason(chunk[error["index"]][0], error["detail"]) for error in stored.errors]
    result.rejected = len(result.reasons)
    if result.rejected:
        log.warning("otlp: %d of %d decision span(s) rejected", result.rejected, result.decisions,
                    extra={"rejected": result.rejected, "first": result.reasons[0]})
    return result
