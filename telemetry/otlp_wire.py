"""The OTLP/HTTP wire format (docs/otlp.md, "Answers"): an export request's body read in either encoding
(protobuf or OTLP/JSON, compressed or not, within the size limit), and the answers a collector gives."""
from __future__ import annotations

import base64
import json
import zlib

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
CONTENT_TYPES = (PROTOBUF, JSON)
# Decompressed bodies are held to the upload limit (DATA_UPLOAD_MAX_MEMORY_SIZE); this when it is off.
DEFAULT_LIMIT = 16 * 1024 * 1024

# google.rpc.Code values of the error answers (the OTLP/HTTP specification asks for a Status).
_CODES = {400: 3, 413: 8, 415: 3}  # INVALID_ARGUMENT, RESOURCE_EXHAUSTED


class OtlpRefused(Exception):
    """The whole request is refused: nothing of it is stored. `status` is the HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# --- reading a request ----------------------------------------------------------------------


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def accepted_type(content_type: str) -> str:
    """The media type, if it is one of OTLP's; else OtlpRefused(415)."""
    kind = media_type(content_type)
    if kind not in CONTENT_TYPES:
        raise OtlpRefused(415, f"Content-Type {kind or 'none'!r} is not supported ({PROTOBUF} or {JSON})")
    return kind


def _inflate(body: bytes, *, wbits: int, limit: int, name: str) -> bytes:
    """Decompress at most `limit` bytes: a few kilobytes of gzip can expand to gigabytes."""
    out = bytearray()
    data = body
    while data:
        stream = zlib.decompressobj(wbits)
        try:
            out += stream.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise OtlpRefused(400, f"the body is not valid {name}: {exc}") from None
        if len(out) > limit:
            raise OtlpRefused(413, f"the decompressed body is larger than {limit:,} bytes")
        if not stream.eof:
            raise OtlpRefused(400, f"the {name} body is truncated")
        data = stream.unused_data  # gzip allows several members one after another
    return bytes(out)


def decompress(body: bytes, *, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return _inflate(body, wbits=16 + zlib.MAX_WBITS, limit=limit, name="gzip")
    if encoding == "deflate":
        # HTTP's "deflate" is the zlib format; some senders send raw deflate, so that is accepted too.
        try:
            return _inflate(body, wbits=zlib.MAX_WBITS, limit=limit, name="deflate")
        except OtlpRefused as exc:
            if exc.status != 400:
                raise
            return _inflate(body, wbits=-zlib.MAX_WBITS, limit=limit, name="deflate")
    raise OtlpRefused(415, f"Content-Encoding {encoding!r} is not supported (gzip, deflate or none)")


# OTLP/JSON writes trace and span ids as hex where the protobuf JSON mapping expects base64: a hex
# id parsed as base64 would decode, silently, to other bytes. These fields are converted first.
_ID_FIELDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")


def _hex_to_base64(holder: dict) -> None:
    for name in _ID_FIELDS:
        value = holder.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise OtlpRefused(400, f"{name} must be a hex string")
        try:
            holder[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
        except ValueError:
            raise OtlpRefused(400, f"{name} is not a hex string: {value[:40]!r}") from None


def _items(holder: dict, *names: str) -> list:
    for name in names:
        value = holder.get(name)
        if value is not None:
            if not isinstance(value, list):
                raise OtlpRefused(400, f"{name} must be an array")
            return value
    return []


def _json_request(body: bytes) -> ExportTraceServiceRequest:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise OtlpRefused(400, f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise OtlpRefused(400, "an OTLP/JSON export request is a JSON object")
    for resource_spans in _items(data, "resourceSpans", "resource_spans"):
        for scope_spans in _items(resource_spans if isinstance(resource_spans, dict) else {},
                                  "scopeSpans", "scope_spans"):
            for span in _items(scope_spans if isinstance(scope_spans, dict) else {}, "spans"):
                if isinstance(span, dict):
                    _hex_to_base64(span)
                    for link in _items(span, "links"):
                        if isinstance(link, dict):
                            _hex_to_base64(link)
    try:
        # Unknown fields are ignored, as the OTLP specification asks of receivers.
        return json_format.ParseDict(data, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError) as exc:
        raise OtlpRefused(400, f"the body is not an OTLP/JSON export request: {exc}") from None


def decode_request(body: bytes, *, content_type: str, content_encoding: str = "",
                   limit: int) -> ExportTraceServiceRequest:
    """The export request in `body`; OtlpRefused (400, 413, 415) when it cannot be read."""
    kind = accepted_type(content_type)
    raw = decompress(body, encoding=content_encoding, limit=limit)
    if kind == JSON:
        return _json_request(raw)
    try:
        return ExportTraceServiceRequest.FromString(raw)
    except (DecodeError, RecursionError) as exc:
        raise OtlpRefused(400, f"the body is not an OTLP protobuf export request: {exc}") from None


# --- answering ------------------------------------------------------------------------------


def encode_response(*, rejected: int, error_message: str, content_type: str) -> bytes:
    """ExportTraceServiceResponse in the request's encoding; partial_success only when spans were
    rejected (a fully accepted request leaves it unset, as the specification asks)."""
    if media_type(content_type) == JSON:
        body: dict = {}
        if rejected:
            body["partialSuccess"] = {"rejectedSpans": rejected, "errorMessage": error_message}
        return json.dumps(body).encode()
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.CopyFrom(ExportTracePartialSuccess(rejected_spans=rejected,
                                                                    error_message=error_message))
    return response.SerializeToString()


def encode_status(status: int, message: str, *, content_type: str) -> tuple[bytes, str]:
    """The body of an error answer: a google.rpc.Status in the request's encoding (JSON when the
    request's own encoding is not one of OTLP's)."""
    code = _CODES.get(status, 2)  # UNKNOWN
    if media_type(content_type) == PROTOBUF:
        return status_pb2.Status(code=code, message=message).SerializeToString(), PROTOBUF
    return json.dumps({"code": code, "message": message}).encode(), JSON

