"""The error statuses of the OpenAPI document (/api/v1/openapi.json): the ones every endpoint can
answer whatever its own code does — the request cannot be read (400), nobody is signed in (401),
the role, the token's scope or the CSRF token refuses it (403), a parameter or the body does not
validate (422), the body is too large (413), a dependency is down (503 with Retry-After) — added
beside each endpoint's own statuses (404, 409…), so a client generated from the document knows
every answer it can meet (docs/hardening.md). 500 is not listed: it is a bug."""
from __future__ import annotations

from ninja import NinjaAPI

from .probes import RETRY_AFTER_SECONDS

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
ERROR_SCHEMA = {
    "title": "ErrorOut", "type": "object", "properties": {"detail": {"title": "Detail"}}, "required": ["detail"],
    "description": "Every error: `detail` (a sentence, or a list of problems), with the fields a caller acts on.",
}

EVERY_CALL = {
    "400": "The request cannot be read: a body that is not JSON, or a query string or path with a NUL "
           "character or invalid text.",
    "401": "No valid, unexpired bearer token and no signed-in session.",
    "403": "The caller's role or the token's scope does not allow this call, or a signed-in browser's call "
           "that changes state lacks its CSRF token.",
    "503": f"A dependency (the database, the shared cache or the broker) is down: retry after Retry-After "
           f"seconds ({RETRY_AFTER_SECONDS}).",
}
WITH_INPUT = {"422": "A parameter or the body does not validate; `detail` names each problem."}
WITH_BODY = {"413": "The body is larger than the server accepts."}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}


def _error_response(description: str, *, retry_after: bool = False) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": dict(ERROR_REF)}}}
    if retry_after:
        response["headers"] = dict(RETRY_AFTER)
    return response


def document_errors(schema: dict) -> dict:
    """Add the statuses every call can answer to each operation of `schema` (in place), keeping
    what an endpoint documents itself."""
    schema.setdefault("components", {}).setdefault("schemas", {}).setdefault("ErrorOut", ERROR_SCHEMA)
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = dict(EVERY_CALL)
            if operation.get("parameters") or "requestBody" in operation:
                statuses.update(WITH_INPUT)
            if "requestBody" in operation:
                statuses.update(WITH_BODY)
            responses = operation["responses"]
            for status, description in statuses.items():
                key = int(status) if any(isinstance(k, int) for k in responses) else status
                if key in responses or str(key) in responses:
                    continue
                responses[key] = _error_response(description, retry_after=status == "503")
    return schema


class DocumentedAPI(NinjaAPI):
    """django-ninja's API whose OpenAPI document lists every error status (document_errors)."""

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        return document_errors(super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params))
