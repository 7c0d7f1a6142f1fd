"""The HTTP API root (/api/v1/): authentication, authorization and error shapes for every router."""
from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import RequestDataTooBig
from django.db import DataError
from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import APIKeyCookie, HttpBearer

from .audit import RequestContext, request_context
from .exceptions import DomainError
from .models import ApiToken, Scope
from .roles import user_roles
from .tokens import token_authenticate

MACHINE_SCOPES = frozenset({Scope.ROUTE_READ, Scope.EVENTS_WRITE, Scope.ESCALATIONS_WRITE})


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person through a browser session, or a token and its owner."""

    user: object
    token: ApiToken | None = None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.token.scopes) if self.token else frozenset()

    @property
    def roles(self) -> frozenset[str]:
        return user_roles(self.user)


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class BearerToken(HttpBearer):
    def authenticate(self, request, token):
        api_token = token_authenticate(token)
        if api_token is None:
            return None
        request.user = api_token.user
        request_context.set(RequestContext(source_ip=client_ip(request), via=f"token {api_token.name}"))
        return Principal(api_token.user, api_token)


class BrowserSession(APIKeyCookie):
    """A signed-in person: the session cookie, with Django's CSRF check on unsafe methods."""

    param_name = "sessionid"

    def _get_key(self, request):
        from django.conf import settings

        return request.COOKIES.get(settings.SESSION_COOKIE_NAME)

    def authenticate(self, request, key):
        if request.user.is_authenticated and request.user.is_active:
            return Principal(request.user)
        return None


api = NinjaAPI(
    title="rolloutops API",
    version="1",
    description="Control plane for AI agent rollouts. Machines send `Authorization: Bearer <token>`.",
    auth=[BearerToken(), BrowserSession()],
    urls_namespace="api",
)


def require(request, *, roles: set[str] | frozenset[str], scope: str | None = None) -> Principal:
    """Authorize a call. A token needs the endpoint's machine scope (or `user`, acting as its
    owner) and, for endpoints people use, the `user` scope; and its owner must hold one of
    `roles`. A token never does more than both allow."""
    principal: Principal = request.auth
    if principal.token is not None:
        needed = {Scope.USER} if scope is None else {scope, Scope.USER}
        if not principal.scopes & needed:
            wanted = " or ".join(sorted(needed))
            raise HttpError(403, f"this token lacks the scope for this call (needs {wanted})")
    if not principal.roles & set(roles):
        raise HttpError(403, f"this call needs the {' or '.join(sorted(roles))} role")
    return principal


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


def _mount_routers() -> None:
    # Each app owns its router; mounted here so the whole API is one OpenAPI document.
    from agents.api import router as agents_router
    from escalations.api import router as escalations_router
    from rollouts.api import router as rollouts_router
    from telemetry.api import router as telemetry_router
    from telemetry.api_otlp import router as otlp_router

    from .api_audit import router as audit_router

    api.add_router("", agents_router)
    api.add_router("", rollouts_router)
    api.add_router("", telemetry_router)
    api.add_router("", otlp_router)
    api.add_router("", escalations_router)
    api.add_router("", audit_router)


_mount_routers()
