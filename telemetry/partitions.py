"""PostgreSQL's partitions of the raw event table (docs/architecture.md, "Events"): one a calendar
month of occurred_at (UTC), created ahead of time, dropped whole by the retention; a DEFAULT
partition holds whatever falls outside them. Nothing here runs on SQLite, whose table is one."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from django.db import connection

TABLE = "telemetry_event"
KEYS = "telemetry_eventkey"  # the idempotency keys: a partitioned table cannot hold a unique index across partitions
MONTHS_AHEAD = 1  # each partition costs the fold one index probe per lookup: few empty ones
_NAME = re.compile(rf"^{TABLE}_p(\d{{4}})(\d{{2}})$")


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime  # first moment it holds
    end: datetime  # first moment it does not


def partitioned() -> bool:
    """Whether this database's event table is partitioned (PostgreSQL, after migration 0012)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                       "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace)", [TABLE])
        return cursor.fetchone()[0]


def _month(moment: datetime, shift: int = 0) -> datetime:
    index = moment.year * 12 + moment.month - 1 + shift
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.utc)


def month_partition(moment: datetime) -> Partition:
    start = _month(moment)
    return Partition(f"{TABLE}_p{start:%Y%m}", start, _month(start, 1))


def partitions() -> list[Partition]:
    """The monthly partitions that exist, oldest first (not the DEFAULT one)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                       "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s", [TABLE])
        names = [row[0] for row in cursor.fetchall()]
    found = []
    for name in names:
        match = _NAME.match(name)
        if match:
            found.append(month_partition(datetime(int(match[1]), int(match[2]), 1, tzinfo=timezone.utc)))
    return sorted(found, key=lambda p: p.start)


def partition_create(moment: datetime) -> Partition | None:
    """The month of `moment` as a partition, unless it exists; None if the DEFAULT partition already
    holds rows of that month (PostgreSQL would refuse: they stay there, the retention deletes them)."""
    part = month_partition(moment)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [part.name])
        if cursor.fetchone()[0]:
            return None
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {TABLE}_default WHERE occurred_at >= %s AND occurred_at < %s)",
                       [part.start, part.end])
        if cursor.fetchone()[0]:
            return None
        cursor.execute(f"CREATE TABLE {part.name} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)",
                       [part.start, part.end])
    return part


def partitions_ensure(now: datetime) -> list[Partition]:
    """This month's partition and the next MONTHS_AHEAD: ingestion accepts up to a few minutes
    ahead, so the partition an event lands in always exists by the time it is needed."""
    if not partitioned():
        return []
    return [part for shift in range(MONTHS_AHEAD + 1) if (part := partition_create(_month(now, shift)))]


def partitions_expired(cutoff: datetime) -> list[Partition]:
    """Partitions every moment of which is older than `cutoff`: droppable whole."""
    return [part for part in partitions() if part.end <= cutoff]
