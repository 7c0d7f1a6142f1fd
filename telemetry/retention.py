"""Retention of raw events (docs/architecture.md, "Events"): what is older than EVENT_RETENTION_DAYS
goes — raw events and the discrepant pairs listed from them — and the hourly rollups stay. On
PostgreSQL the event table is partitioned by month (telemetry/partitions.py) and a month goes
whole, once all of it is older than the cutoff; elsewhere rows are deleted."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from .models import DiscrepantPair, Event, UnfoldedEvent
from .partitions import KEYS, TABLE, Partition, partitioned, partitions_ensure, partitions_expired

# Rows a transaction: short enough that ingestion never waits long on a deleting transaction.
DELETE_BATCH = 20_000


@dataclass(frozen=True)
class RetentionPlan:
    cutoff: datetime  # raw events that occurred before this go
    events: int  # raw events older than the cutoff (and folded: a queued one waits for the fold)
    waiting: int  # older than the cutoff but not folded yet: kept until they are
    discrepant_pairs: int  # listed pairs whose candidate decision is older than the cutoff


@dataclass(frozen=True)
class RetentionDone:
    cutoff: datetime
    events: int
    discrepant_pairs: int
    seconds: float


def retention_cutoff(now: datetime) -> datetime:
    """The oldest occurred_at kept: the same bound ingestion accepts (services.accepted_window), so
    nothing the door would still take is ever dropped."""
    return now - timedelta(days=settings.ROLLOUTOPS["EVENT_RETENTION_DAYS"])


def _old_events(cutoff: datetime):
    return Event.objects.filter(occurred_at__lt=cutoff)


def _droppable(cutoff: datetime) -> tuple[list[Partition], list[Partition]]:
    """Expired partitions: (those that can go, those holding events the fold has not counted yet)."""
    ready, waiting = [], []
    for part in partitions_expired(cutoff):
        queued = UnfoldedEvent.objects.filter(occurred_at__gte=part.start, occurred_at__lt=part.end).exists()
        (waiting if queued else ready).append(part)
    return ready, waiting


def _count(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def retention_plan(*, now: datetime) -> RetentionPlan:
    """What `retention_apply` would remove now, counted; changes nothing."""
    cutoff = retention_cutoff(now)
    pairs = DiscrepantPair.objects.filter(occurred_at__lt=cutoff).count()
    if partitioned():
        ready, waiting = _droppable(cutoff)
        default = f"FROM {TABLE}_default e WHERE e.occurred_at < %s"
        queued = f"EXISTS (SELECT 1 FROM {UnfoldedEvent._meta.db_table} q WHERE q.event_id = e.id)"
        events = sum(_count(f"SELECT COUNT(*) FROM {part.name}", []) for part in ready)
        events += _count(f"SELECT COUNT(*) {default} AND NOT {queued}", [cutoff])
        held = sum(_count(f"SELECT COUNT(*) FROM {part.name}", []) for part in waiting)
        held += _count(f"SELECT COUNT(*) {default} AND {queued}", [cutoff])
        return RetentionPlan(cutoff=cutoff, events=events, waiting=held, discrepant_pairs=pairs)
    old = _old_events(cutoff)
    waiting = UnfoldedEvent.objects.filter(event_id__in=old.values("id")).count()
    return RetentionPlan(cutoff=cutoff, events=old.count() - waiting, waiting=waiting, discrepant_pairs=pairs)


def retention_apply(*, now: datetime, batch: int = DELETE_BATCH) -> RetentionDone:
    """Remove raw events older than the cutoff that the fold has counted (on PostgreSQL a month's
    partition at a time, once all of it is older; elsewhere `batch` rows a transaction), and the
    discrepant pairs older than it. Rollups (StageHour, LatencyHour, PairHour) are kept:
    every figure and chart stays; a pair's page then says its events are gone.

    A queued (unfolded) event is kept until folded, so every stored event is counted once. A half
    whose partner arrives after the retention window can no longer pair: the door refuses an
    event that old, and the other half's own occurred_at is inside the window only if it came late.
    """
    started = time.monotonic()
    cutoff = retention_cutoff(now)
    if partitioned():
        events = _apply_partitioned(cutoff, now, batch)
    else:
        events = _delete_rows(Event._meta.db_table, cutoff, batch)
    pairs = 0
    while True:
        with transaction.atomic():
            ids = list(DiscrepantPair.objects.filter(occurred_at__lt=cutoff).values_list("id", flat=True)[:batch])
            pairs += DiscrepantPair.objects.filter(id__in=ids).delete()[0] if ids else 0
        if len(ids) < batch:
            break
    return RetentionDone(cutoff=cutoff, events=events, discrepant_pairs=pairs, seconds=time.monotonic() - started)


def _apply_partitioned(cutoff: datetime, now: datetime, batch: int) -> int:
    """Drop each expired month whose events are all folded, with its idempotency keys; delete the
    DEFAULT partition's old rows; make sure the coming months have their partitions."""
    events = 0
    for part in _droppable(cutoff)[0]:
        with transaction.atomic(), connection.cursor() as cursor:
            events += _count(f"SELECT COUNT(*) FROM {part.name}", [])
            # Foreign keys are checked at commit; a table with checks pending cannot be dropped.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"DROP TABLE {part.name}")
            # A key's occurred_at is its stored event's: these keys were the dropped events'.
            cursor.execute(f"DELETE FROM {KEYS} WHERE occurred_at >= %s AND occurred_at < %s", [part.start, part.end])
    events += _delete_rows(f"{TABLE}_default", cutoff, batch)
    partitions_ensure(now)
    return events


def _delete_rows(table: str, cutoff: datetime, batch: int) -> int:
    """Delete folded rows of `table` older than the cutoff, `batch` a transaction (and their keys,
    where the event table is partitioned)."""
    queue = UnfoldedEvent._meta.db_table
    keys = partitioned()
    events = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            # Raw SQL: the ORM's delete() would load each row to cascade; nothing points at events
            # but the queue, and queued events are not taken.
            delete = (f"DELETE FROM {table} WHERE id IN (SELECT e.id FROM {table} e WHERE e.occurred_at < %s "
                      f"AND NOT EXISTS (SELECT 1 FROM {queue} q WHERE q.event_id = e.id) LIMIT %s)")
            if keys:
                cursor.execute(
                    f"WITH gone AS ({delete} RETURNING agent_id, version_id, request_key, kind), "
                    f"keys AS (DELETE FROM {KEYS} k USING gone g WHERE k.agent_id = g.agent_id "
                    f"AND k.request_key = g.request_key AND k.kind = g.kind "
                    f"AND COALESCE(k.version_id, 0) = COALESCE(g.version_id, 0)) SELECT COUNT(*) FROM gone",
                    [cutoff, batch])
                deleted = cursor.fetchone()[0]
            else:
                cursor.execute(delete, [connection.ops.adapt_datetimefield_value(cutoff), batch])
                deleted = cursor.rowcount
        events += deleted
        if deleted < batch:
            return events
