"""Who is calling: bearer tokens and browser sessions, and the one call every API endpoint makes
to authorize itself against the policy (docs/architecture.md, "How a request travels")."""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from . import policy
from .audit import RequestContext, request_context
from .models import ApiToken
from .tokens import token_authenticate

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


@dataclass(frozen=True)
class Principal:
    """A person through a browser session, or a token and its owner."""

    user: object
    token: ApiToken | None = None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.token.scopes) if self.token else frozenset()

    @property
    def roles(self) -> frozenset[str]:
        return policy.user_roles(self.user)


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def bearer_token(request: HttpRequest) -> ApiToken | None:
    """The usable token of `Authorization: Bearer …`, or None (absent, unknown, revoked, expired).
    A token call is audited as "<owner> via token <name>"."""
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token_authenticate(raw.strip())
    if token is not None:
        request_context.set(RequestContext(source_ip=client_ip(request), via=f"token {token.name}"))
    return token


class BearerToken(HttpBearer):
    def authenticate(self, request, token):
        api_token = bearer_token(request)
        if api_token is None:
            return None
        request.user = api_token.user
        return Principal(api_token.user, api_token)


class BrowserSession(APIKeyCookie):
    """A signed-in person: the session cookie. A call that changes state also needs the CSRF token
    (the `X-CSRFToken` header every page sends), or any site the person visits could make their
    browser post to the API with their cookie. Token calls carry no cookie and need none."""

    param_name = "sessionid"

    def _get_key(self, request):
        # Not the parent's: it would refuse a stale cookie's unsafe call with 403 before we know
        # whether anyone is signed in (that call is a 401).
        return request.COOKIES.get(settings.SESSION_COOKIE_NAME)

    def authenticate(self, request, key):
        user = request.user
        if not (user.is_authenticated and user.is_active):
            return None
        if request.method not in SAFE_METHODS and check_csrf(request) is not None:
            raise HttpError(403, "CSRF check failed: a signed-in browser's call that changes state must send "
                                 "the X-CSRFToken header (scripts use a bearer token instead)")
        return Principal(user)


def scope_refusal(token: ApiToken | None, action: str) -> str | None:
    """Why this token may not be used for `action` (None for a session, or a token that may)."""
    accepted = policy.rule(action).scopes
    if token is not None and not frozenset(token.scopes) & accepted:
        return f"this token lacks the scope for this call (needs {' or '.join(sorted(accepted))})"
    return None


def refusal(principal: Principal, action: str) -> str | None:
    """Why this caller may not do `action` (None when they may): the caller's token must carry a
    scope the action accepts (`user` acts as its owner) and its owner, or the signed-in person, a
    role the action needs. A token never does more than both allow (rolloutops/policy.py)."""
    refused = scope_refusal(principal.token, action)
    if refused is not None:
        return refused
    roles = policy.rule(action).roles
    if not principal.roles & roles:
        return f"this call needs the {' or '.join(sorted(roles))} role"
    return None


def authorize(request, action: str) -> Principal:
    """The one call of every API endpoint: 403 unless the caller may do `action` (refusal)."""
    principal: Principal = request.auth
    refused = refusal(principal, action)
    if refused is not None:
        raise HttpError(403, refused)
    return principal


def caller(request: HttpRequest) -> Principal | None:
    """Who calls a safe (GET) request outside django-ninja, as the API's authentication finds them:
    a usable bearer token first, else a signed-in person (rollouts/api.py's route view)."""
    token = bearer_token(request)
    if token is not None:
        request.user = token.user
        return Principal(token.user, token)
    user = request.user if request.COOKIES.get(settings.SESSION_COOKIE_NAME) else None
    if user is not None and user.is_authenticated and user.is_active:
        return Principal(user)
    return None
