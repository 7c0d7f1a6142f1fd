"""HTTP API of OTLP ingestion (mounted under /api/v1/ by console.api): POST /otlp/v1/traces, answered
as an OpenTelemetry collector answers (docs/otlp.md)."""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from ninja import Router

from rolloutops.auth import authorize

from . import otlp, otlp_wire

router = Router(tags=["telemetry"])

_DESCRIPTION = """
OpenTelemetry OTLP/HTTP traces: point an OTLP exporter's traces endpoint here
(`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=https://…/api/v1/otlp/v1/traces`,
`OTEL_EXPORTER_OTLP_TRACES_HEADERS=Authorization=Bearer%20<token>`). Token scope `events:write`,
owned by an operator.

Bodies: `application/x-protobuf` or `application/json` (an `ExportTraceServiceRequest`), optionally
`Content-Encoding: gzip` or `deflate`. Each span carrying `rolloutops.request_key` is one decision,
stored as `POST /events` stores it (same validation, same idempotency: re-exporting changes nothing);
the spans below it in its trace become its trace steps. The mapping is in docs/otlp.md.

Answers 200 with an `ExportTraceServiceResponse` in the request's encoding; when decision spans are
refused, `partial_success.rejected_spans` counts them and `error_message` names the first reasons.
400 for a body that cannot be decoded, 413 over the size limit, 415 for another content type or
encoding (with a `google.rpc.Status` body).
"""


@router.post(
    "/otlp/v1/traces",
    summary="Report decisions as OpenTelemetry traces (OTLP/HTTP, protobuf or JSON)",
    description=_DESCRIPTION,
    response={200: None, 400: None, 413: None, 415: None},
    openapi_extra={"requestBody": {"required": True, "content": {
        otlp_wire.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
        otlp_wire.JSON: {"schema": {"type": "object", "description": "OTLP/JSON ExportTraceServiceRequest"}},
    }}},
)
def otlp_traces(request):
    principal = authorize(request, "events.write")
    content_type = request.headers.get("Content-Type", "")
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or otlp_wire.DEFAULT_LIMIT
    try:
        kind = otlp_wire.accepted_type(content_type)  # before the body is read: a wrong type needs none of it
        try:
            body = request.body
        except RequestDataTooBig:
            raise otlp_wire.OtlpRefused(413, f"the body is larger than {limit:,} bytes") from None
        export = otlp_wire.decode_request(body, content_type=content_type, limit=limit,
                                          content_encoding=request.headers.get("Content-Encoding", ""))
    except otlp_wire.OtlpRefused as exc:
        body, answer_type = otlp_wire.encode_status(exc.status, exc.message, content_type=content_type)
        return HttpResponse(body, status=exc.status, content_type=answer_type)
    result = otlp.otlp_traces_ingest(export=export, actor=principal.user)
    return HttpResponse(otlp_wire.encode_response(rejected=result.rejected, error_message=result.error_message,
                                                  content_type=kind), content_type=kind)
