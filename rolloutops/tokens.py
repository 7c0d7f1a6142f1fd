"""API tokens: issue (shown once, stored as a hash), authenticate, revoke."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from .audit import audit_record
from .cache import cache_delete, cache_get, cache_set
from .exceptions import Invalid
from .models import ApiToken
from .policy import Scope, user_roles

TOKEN_PREFIX = "rlo_"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def parse_scopes(text: str | list[str]) -> list[str]:
    items = text.split(",") if isinstance(text, str) else list(text)
    scopes = sorted({s.strip() for s in items if s.strip()})
    unknown = [s for s in scopes if s not in Scope.values]
    if unknown:
        raise Invalid(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(Scope.values)}")
    if not scopes:
        raise Invalid("a token needs at least one scope")
    return scopes


def token_issue(*, user, scopes, name: str = "", expires_in_days: int | None = None, actor=None) -> tuple[ApiToken, str]:
    """Returns the row and the raw token; the raw token is never stored and cannot be shown again."""
    scopes = parse_scopes(scopes)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name or f"token-{raw[4:10]}", prefix=raw[:10], token_hash=hash_token(raw),
            scopes=scopes, expires_at=expires_at,
        )
        audit_record(actor=actor, action="token.issued", obj=token,
                     after={"user": user.get_username(), "scopes": scopes, "expires_at": expires_at})
    return token, raw


def token_revoke(*, token: ApiToken, actor=None) -> ApiToken:
    with transaction.atomic():
        changed = ApiToken.objects.filter(pk=token.pk, revoked_at=None).update(revoked_at=timezone.now())
        _forget(token)
        if changed:
            audit_record(actor=actor, action="token.revoked", obj=token, before={"revoked": False}, after={"revoked": True})
    token.refresh_from_db()
    return token


# Machine calls (route, events) are hot: a token and its owner's roles are cached briefly in the
# shared cache. Revoking deletes the entry at once; a role or activation change waits this long.
# When the cache is down every check reads the database instead (rolloutops/cache.py).
TOKEN_CACHE_SECONDS = 30


def _cache_key(token_hash: str) -> str:
    return f"token:v1:{token_hash}"


def _from_cache(entry: dict) -> ApiToken:
    user = get_user_model()(pk=entry["user_id"], username=entry["username"], is_active=True,
                            is_superuser=entry["is_superuser"])
    user._rolloutops_roles = frozenset(entry["roles"])
    token = ApiToken(pk=entry["id"], name=entry["name"], prefix=entry["prefix"], scopes=entry["scopes"],
                     expires_at=entry["expires_at"], user=user)
    token._state.adding = False
    return token


def _forget(token: ApiToken) -> None:
    key = _cache_key(token.token_hash)
    cache_delete(key)
    transaction.on_commit(lambda: cache_delete(key))


def token_authenticate(raw: str) -> ApiToken | None:
    if not raw or not raw.startswith(TOKEN_PREFIX):
        return None
    digest = hash_token(raw)
    now = timezone.now()
    entry = cache_get(_cache_key(digest))
    if entry is not None:
        if entry["expires_at"] is not None and entry["expires_at"] <= now:
            return None
        return _from_cache(entry)
    token = ApiToken.objects.select_related("user").filter(token_hash=digest).first()
    if token is None or not token.is_usable(now) or not token.user.is_active:
        return None
    # Touch last_used_at at most once a minute (and the cache holds it for less than that).
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    cache_set(_cache_key(digest), {
        "id": token.pk, "name": token.name, "prefix": token.prefix, "scopes": list(token.scopes),
        "expires_at": token.expires_at, "user_id": token.user_id, "username": token.user.get_username(),
        "is_superuser": token.user.is_superuser, "roles": sorted(user_roles(token.user)),
    }, TOKEN_CACHE_SECONDS)
    return token
