"""The HTTP API root (/api/v1/): mounts every app's router into one OpenAPI document and maps
errors to their `{"detail": …}` shapes. Who is calling lives in rolloutops/auth.py, who may do
what in rolloutops/policy.py."""
from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.db import DataError
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError

from agents.api import router as agents_router
from escalations.api import router as escalations_router
from rolloutops.api import router as audit_router
from rolloutops.auth import BearerToken, BrowserSession
from rolloutops.exceptions import DomainError
from rollouts.api import router as rollouts_router
from telemetry.api import router as telemetry_router

api = NinjaAPI(
    title="rolloutops API",
    version="1",
    description="Control plane for AI agent rollouts. Machines send `Authorization: Bearer <token>`.",
    auth=[BearerToken(), BrowserSession()],
    urls_namespace="api",
)

api.add_router("", agents_router)
api.add_router("", rollouts_router)
api.add_router("", telemetry_router)
api.add_router("", escalations_router)
api.add_router("", audit_router)


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
