"""Retention of raw events (docs/architecture.md, "Events"): what is older than EVENT_RETENTION_DAYS
goes — raw events and the discrepant pairs listed from them — and the hourly rollups stay."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from .models import DiscrepantPair, Event, UnfoldedEvent

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


def retention_plan(*, now: datetime) -> RetentionPlan:
    """What `retention_apply` would remove now, counted; changes nothing."""
    cutoff = retention_cutoff(now)
    old = _old_events(cutoff)
    waiting = UnfoldedEvent.objects.filter(event_id__in=old.values("id")).count()
    return RetentionPlan(cutoff=cutoff, events=old.count() - waiting, waiting=waiting,
                         discrepant_pairs=DiscrepantPair.objects.filter(occurred_at__lt=cutoff).count())


def retention_apply(*, now: datetime, batch: int = DELETE_BATCH) -> RetentionDone:
    """Delete raw events older than the cutoff that the fold has counted, and the discrepant pairs
    older than it, `batch` rows a transaction. Rollups (StageHour, LatencyHour, PairHour) are kept:
    every figure and chart stays; a pair's page then says its events are gone.

    A queued (unfolded) event is kept until folded, so every stored event is counted once. A half
    whose partner arrives after the retention window can no longer pair: the door refuses an
    event that old, and the other half's own occurred_at is inside the window only if it came late.
    """
    started = time.monotonic()
    cutoff = retention_cutoff(now)
    table, queue = Event._meta.db_table, UnfoldedEvent._meta.db_table
    events = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            # Raw SQL: the ORM's delete() would load each row to cascade; nothing points at events
            # but the queue, and queued events are not taken.
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT e.id FROM {table} e WHERE e.occurred_at < %s "
                f"AND NOT EXISTS (SELECT 1 FROM {queue} q WHERE q.event_id = e.id) LIMIT %s)",
                [connection.ops.adapt_datetimefield_value(cutoff), batch])
            deleted = cursor.rowcount
        events += deleted
        if deleted < batch:
            break
    pairs = 0
    while True:
        with transaction.atomic():
            ids = list(DiscrepantPair.objects.filter(occurred_at__lt=cutoff).values_list("id", flat=True)[:batch])
            pairs += DiscrepantPair.objects.filter(id__in=ids).delete()[0] if ids else 0
        if len(ids) < batch:
            break
    return RetentionDone(cutoff=cutoff, events=events, discrepant_pairs=pairs, seconds=time.monotonic() - started)
