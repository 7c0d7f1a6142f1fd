"""API tokens: issue (shown once, stored as a hash), authenticate (cached in the process under the
token table's generation), revoke."""
from __future__ import annotations

import copy
import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from .audit import audit_record
from .cache import ProcessCache, cache_get, cache_set
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


# Machine calls (route, events) are hot, so a token and its owner's roles are cached in this
# process, for at most TOKEN_CACHE_SECONDS, under the tokens' *generation*: a digest of the token
# table that every revocation (and every deletion) moves. Each process reads the generation at most
# once per GENERATION_CHECK_S (one small aggregate), so a revocation is in force in every process
# within that second, and at once in the one that revoked. Behind this process's entries sits the
# shared cache, keyed by the generation too, so an entry from before a revocation is never read
# again. A role or activation change waits TOKEN_CACHE_SECONDS. When the shared cache is down every
# process-level miss reads the database instead (rolloutops/cache.py). docs/scaling.md measures it.
TOKEN_CACHE_SECONDS = 30
GENERATION_CHECK_S = 1.0
LOCAL_MAX_ENTRIES = 10_000  # tokens held per process; a full table is emptied, not evicted one by one


def token_generation() -> str:
    """Moves whenever a token stops being usable other than by expiring: a revocation (count and
    newest time of revoked tokens) or a deletion (the count of tokens, and their newest id, so that
    a deletion and an issue together still move it)."""
    row = ApiToken.objects.aggregate(n=Count("id"), last=Max("id"), r=Count("revoked_at"), at=Max("revoked_at"))
    revoked_at = row["at"].timestamp() if row["at"] else 0
    return f"{row['n']}.{row['last'] or 0}.{row['r']}.{revoked_at:.6f}"


# This process's token entries, valid for one generation of the token table.
_local = ProcessCache(token_generation, check_s=GENERATION_CHECK_S, max_entries=LOCAL_MAX_ENTRIES)


def tokens_cache_clear() -> None:
    """Forget this process's tokens (the next check re-reads the generation)."""
    _local.clear()


def _cache_key(token_hash: str, generation: str) -> str:
    return f"token:v2:{generation}:{token_hash}"


def _from_entry(entry: dict) -> ApiToken:
    user = get_user_model()(pk=entry["user_id"], username=entry["username"], is_active=True,
                            is_superuser=entry["is_superuser"])
    user._rolloutops_roles = frozenset(entry["roles"])
    token = ApiToken(pk=entry["id"], name=entry["name"], prefix=entry["prefix"], scopes=entry["scopes"],
                     expires_at=entry["expires_at"], user=user)
    token._state.adding = False
    return token


def _copy(token: ApiToken) -> ApiToken:
    # Each request gets its own instances (a model's copy has its own state), at half the cost of
    # building them again from the entry.
    user = copy.copy(token.user)
    token = copy.copy(token)
    token.user = user
    return token


def _forget(token: ApiToken) -> None:
    # The revocation moves the generation; this process need not wait a second to see it.
    _local.clear()
    transaction.on_commit(_local.clear)


def _fresh(entry: dict, now) -> bool:
    return (now - entry["cached_at"]).total_seconds() < TOKEN_CACHE_SECONDS


def token_authenticate(raw: str) -> ApiToken | None:
    if not raw or not raw.startswith(TOKEN_PREFIX):
        return None
    digest = hash_token(raw)
    now = timezone.now()
    generation = _local.current_generation()
    held = _local.entries.get(digest)
    if held is None or not _fresh(held[0], now):
        entry = cache_get(_cache_key(digest, generation))
        if entry is not None and not _fresh(entry, now):
            entry = None
        if entry is None:
            entry = _read(digest, now)
            if entry is None:
                return None
            cache_set(_cache_key(digest, generation), entry, TOKEN_CACHE_SECONDS)
        held = (entry, _from_entry(entry))
        _local.put(digest, held, generation)
    entry, token = held
    if entry["expires_at"] is not None and entry["expires_at"] <= now:
        return None
    return _copy(token)


def _read(digest: str, now) -> dict | None:
    """The token's cache entry from the database, or None when it may not be used."""
    token = ApiToken.objects.select_related("user").filter(token_hash=digest).first()
    if token is None or not token.is_usable(now) or not token.user.is_active:
        return None
    # Touch last_used_at at most once a minute (and the cache holds it for less than that).
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return {
        "id": token.pk, "name": token.name, "prefix": token.prefix, "scopes": list(token.scopes),
        "expires_at": token.expires_at, "user_id": token.user_id, "username": token.user.get_username(),
        "is_superuser": token.user.is_superuser, "roles": sorted(user_roles(token.user)), "cached_at": now,
    }
