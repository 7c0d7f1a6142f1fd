"""Request keys for runtimes that have no id of their own for a request.

A request key names one request everywhere: routing buckets it, and the server keeps one decision
per decider and key. Random keys (UUIDv4, hashes) land on random pages of the server's request-keyed
indexes, which at a hundred million events no longer fit in memory; time-ordered ones land at their
ends, and ingestion stays as fast as on an empty table (docs/scaling.md in the rolloutops
repository, "Events at 100 M"). These are UUIDv7 (RFC 9562), made by the `uuid-utils` library:
monotonic within a process, and its millisecond is the clock's (a library that steps the
millisecond for every key made within one runs ahead of the clock under load).
"""
from __future__ import annotations

from uuid_utils import uuid7


def request_key() -> str:
    """A new request key: a UUIDv7 as text, 36 characters, sorting after every key made before it in
    this process (by its millisecond, and within one by the library's counter)."""
    return str(uuid7())
