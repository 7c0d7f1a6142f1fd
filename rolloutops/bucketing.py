"""Request buckets: where a request key falls among a rollout's 10,000, and whether the candidate
takes it. Pure: the server's routing, the attribution of events to arms and the client library
(`client/`, which repeats these lines) must agree on every key (docs/architecture.md, "Routing")."""
from __future__ import annotations

import hashlib

BUCKETS = 10_000


def bucket(salt: str, request_key: str) -> int:
    """Stable across processes and releases (not Python's hash()): sha256 of salt and key."""
    digest = hashlib.sha256(f"{salt}\x1f{request_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def goes_to_candidate(bucket_value: int, traffic_percent: float) -> bool:
    # Raising the percentage only adds buckets below the bar: a key never moves back.
    return bucket_value < round(traffic_percent * 100)
