"""The audit chain's keys: the current one (AUDIT_CHECKPOINT_KEY) that seals new entries and signs
checkpoints, and retired ones (AUDIT_RETIRED_KEYS) that still verify what they signed. Keys live
outside the database: whoever can rewrite the table must not be able to recompute the chain."""
from __future__ import annotations

import hashlib
import hmac
import logging
from functools import lru_cache

from django.conf import settings

from .local_secret import persisted_secret

log = logging.getLogger("rolloutops.audit")

GENERATED_KEY_FILE = "audit_checkpoint_key"


def key_id(key: bytes) -> str:
    """A public name for a key, stored beside what it signed, so a verifier picks the right one."""
    return hashlib.sha256(b"rolloutops audit key id\x00" + key).hexdigest()[:16]


@lru_cache(maxsize=4)
def _generated_key(path: str) -> bytes:
    from pathlib import Path

    log.warning("AUDIT_CHECKPOINT_KEY is not set: the audit chain is keyed with a key generated in %s. "
                "Fine for the embedded demo; in production set AUDIT_CHECKPOINT_KEY (the same on every "
                "process) and keep it outside the database.", path)
    return persisted_secret(Path(path)).encode()


def current_key() -> tuple[str, bytes]:
    configured = settings.AUDIT_CHECKPOINT_KEY
    key = configured.encode() if configured else _generated_key(str(settings.VAR_DIR / GENERATED_KEY_FILE))
    return key_id(key), key


def known_keys() -> dict[str, bytes]:
    """Every key a verifier may meet, by key id."""
    keys = {key_id(k.encode()): k.encode() for k in settings.AUDIT_RETIRED_KEYS if k}
    kid, key = current_key()
    keys[kid] = key
    return keys


def mac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def mac_matches(key: bytes, message: bytes, expected: str) -> bool:
    return hmac.compare_digest(mac(key, message), expected or "")
