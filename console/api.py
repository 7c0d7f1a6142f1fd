"""The HTTP API root (/api/v1/): mounts every app's router into one OpenAPI document and maps
errors to their `{"detail": …}` shapes. Who is calling lives in rolloutops/auth.py, who may do
what in rolloutops/policy.py."""
from __future__ import annotations

import json
import logging

from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import DataError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponseBase
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from ninja import Swagger
from ninja.errors import AuthenticationError, ValidationError
from pydantic import ValidationError as SchemaError

from agents.api import router as agents_router
from escalations import services as escalation_services
from escalations.api import ClaimNextIn, ticket_out
from escalations.api import router as escalations_router
from rolloutops.api import router as audit_router
from rolloutops.auth import BearerToken, BrowserSession, Principal, bearer_token, refusal
from rolloutops.exceptions import DomainError
from rolloutops.openapi import DocumentedAPI
from rolloutops.probes import RETRY_AFTER_SECONDS, UNAVAILABLE, dependency_down
from rollouts.api import router as rollouts_router
from telemetry import services as telemetry_services
from telemetry.api import router as telemetry_router
from telemetry.api_otlp import router as otlp_router

_log = logging.getLogger("rolloutops.api")

api = DocumentedAPI(
    title="rolloutops API",
    version="1",
    description="Control plane for AI agent rollouts. Machines send `Authorization: Bearer <token>`.",
    auth=[BearerToken(), BrowserSession()],
    urls_namespace="api",
    # Swagger UI's default shows a badge fetched from validator.swagger.io for any non-localhost
    # host: a request to another site from a page that must work offline. None hides it.
    docs=Swagger(settings={"validatorUrl": None}),
)

api.add_router("", agents_router)
api.add_router("", rollouts_router)
api.add_router("", telemetry_router)
api.add_router("", otlp_router)
api.add_router("", escalations_router)
api.add_router("", audit_router)

# The API's URL patterns, built once: console/urls.py mounts them, and claim_next_view hands them
# every call it does not answer itself.
api_patterns = path("api/v1/", api.urls)


@api.exception_handler(DomainError)
def _domain_error(request, exc: DomainError):
    return api.create_response(request, {"detail": exc.detail, **exc.extra}, status=exc.status_code)


@api.exception_handler(OverflowError)
def _overflow(request, exc):
    # An id or number too large for the database's integers (SQLite raises this one).
    return api.create_response(request, {"detail": "a number in the request is out of range"}, status=422)


@api.exception_handler(DataError)
def _data_error(request, exc):
    # PostgreSQL's "integer out of range" and kin: bad input, never a 500.
    return api.create_response(request, {"detail": "a value in the request is out of range for its field"}, status=422)


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc):
    return api.create_response(request, {"detail": "request body too large"}, status=413)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return api.create_response(
        request, {"detail": "authentication required: a valid, unexpired bearer token or a signed-in session"},
        status=401,
    )


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    return api.create_response(request, {"detail": exc.errors}, status=422)


# Last resorts, so that nothing under /api/ ever answers HTML (the project's handler404/handler500
# cover what happens outside django-ninja). A dependency that is down is 503 with Retry-After: the
# client's retry is right (ingestion is idempotent); anything else is our bug, logged, 500.
@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _dependency_down(request, exc):
    down = dependency_down(exc) or "database"
    _log.warning("dependency down during an API call",
                 extra={"path": request.path, "dependency": down, "error": f"{type(exc).__name__}: {exc}"[:300]})
    response = api.create_response(request, {"detail": f"the {down} is unavailable; retry shortly"}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _register_unavailable_handlers() -> None:
    for exc_type in UNAVAILABLE:
        if exc_type not in (OperationalError, InterfaceError):
            api.add_exception_handler(exc_type, _dependency_down)


_register_unavailable_handlers()


@api.exception_handler(PermissionDenied)
def _permission_denied(request, exc):
    return api.create_response(request, {"detail": str(exc) or "permission denied"}, status=403)


@api.exception_handler(SuspiciousOperation)
@api.exception_handler(BadRequest)
def _bad_request(request, exc):
    # What Django itself answers 400 to (malformed headers, too many fields…), in our shape.
    return api.create_response(request, {"detail": "bad request"}, status=400)


@api.exception_handler(Exception)
def _unhandled(request, exc):
    _log.error("unhandled error in an API call", exc_info=exc, extra={"path": request.path})
    return api.create_response(request, {"detail": "internal error; it has been logged"}, status=500)


# POST /api/v1/escalations/claim-next is every reviewer's and reviewing runtime's hot path. Its
# usual call (a bearer token that may claim, a JSON body of filters or none) is answered by the
# plain view below, mounted ahead of the API (console/urls.py): django-ninja's dispatch,
# authentication loop and response handling cost about a quarter of such a call's CPU in-process
# (bench/README.md, "Escalation claims": a plain view for the usual call). Every other call (a
# session and its CSRF rule, no or a refused token, any other body, method or content type) goes to
# the operation itself, and so does every error, through the API's own handlers: those answers are
# the operation's by construction, and tests/escalations/test_claim_next_view.py asks both, case
# by case, for the same status and body.
_CLAIM_FILTERS = frozenset(ClaimNextIn.model_fields)
_NO_FILTERS = ClaimNextIn().model_dump()


def _served_first(serve):
    """A plain view ahead of an API operation: `serve(request)` answers the operation's usual call,
    or returns None for the operation itself to answer; whatever it raises is answered by the API's
    own handlers, as the operation's would be."""

    @csrf_exempt  # as django-ninja's own views: a session's call is checked by the operation (BrowserSession)
    def view(request: HttpRequest) -> HttpResponseBase:
        try:
            served = serve(request)
        except Exception as exc:  # noqa: BLE001 - answered as the operation would (the API's handlers)
            return api.on_exception(request, exc)
        if served is not None:
            return served
        match = api_patterns.resolve(request.path_info.lstrip("/"))
        return match.func(request, *match.args, **match.kwargs)

    return view


# Each looks its function up by name at every call, so a test can watch which calls it answered.
claim_next_view = _served_first(lambda request: _claim_next_served(request))


def _claim_next_served(request: HttpRequest) -> HttpResponseBase | None:
    """The usual call's answer, or None for the operation to answer."""
    if request.method != "POST" or request.content_type not in ("application/json", ""):
        return None
    body = request.body
    if not request.content_type and body:
        return None
    token = bearer_token(request)
    if token is None or refusal(Principal(token.user, token), "escalation.work") is not None:
        return None
    filters = _claim_filters(body)
    if filters is None:
        return None
    request.user = token.user
    ticket = escalation_services.ticket_claim_next(reviewer=token.user, **filters)
    if ticket is None:
        response = api.create_temporal_response(request)
        response.status_code = 204
        return response
    # ticket_out's dictionary is TicketOut's shape with TicketOut's types (the operation validates
    # the same dictionary against it); rendered as it is, without a second pass through the schema.
    return api.create_response(request, ticket_out(ticket), status=200)


def _claim_filters(body: bytes) -> dict | None:
    """The filters of a body the operation would take as they are: none, or a JSON object of
    valid filters only (anything else: None, for the operation to judge)."""
    if body in (b"", b"{}"):  # the usual call: no filters (what the schema gives for none)
        return dict(_NO_FILTERS)
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not data.keys() <= _CLAIM_FILTERS:
        return None
    try:
        return ClaimNextIn.model_validate(data).model_dump()
    except SchemaError:
        return None


# POST /api/v1/events is every runtime's hot path, and a batch's whole answer is two counts and
# its refused events: its usual call (a bearer token that may write events, a JSON body) is answered
# by the plain view below, mounted ahead of the API (console/urls.py) as claim-next's is, for the
# same reason (bench/README.md, "Shared columns bound once, a plain view, the keys joined"). Every
# other call and every error goes to the operation and the API's own handlers, so those answers are
# the operation's by construction; tests/telemetry/test_events_view.py asks both, case by case.
events_view = _served_first(lambda request: _events_served(request))


def _events_served(request: HttpRequest) -> HttpResponseBase | None:
    """The usual call's answer, or None for the operation to answer."""
    if request.method != "POST" or request.content_type != "application/json":
        return None
    token = bearer_token(request)
    if token is None or refusal(Principal(token.user, token), "events.write") is not None:
        return None
    request.user = token.user
    result = telemetry_services.events_ingest_json(body=request.body, actor=token.user)
    # EventsOut's shape (the operation validates the same dictionary against it).
    return api.create_response(
        request, {"accepted": result.accepted, "duplicates": result.duplicates, "errors": result.errors}, status=200)
