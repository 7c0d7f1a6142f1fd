"""Celery tasks of the telemetry app: thin callers of the fold."""
import logging

from celery import current_app, shared_task
from django.core.cache import cache
from django.db import DatabaseError, OperationalError
from django.utils import timezone

from rolloutops.throttle import ProcessWindow

from .fold import events_fold
from .partitions import partitions_ensure
from .retention import retention_apply

log = logging.getLogger("rolloutops.telemetry")
GUARDRAIL_DEBOUNCE_S = 5
# Ingestion asks for a fold at most once per this many seconds a process, the fold to run that long
# after the ask: every batch committed in between is queued before it starts (fold_soon).
FOLD_NOTICE_S = 1.0
PARTITIONS_CHECK_S = 3600


@shared_task(
    name="telemetry.fold_events",
    ignore_result=True,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=60,
    time_limit=90,
)
def fold_events() -> int:
    # Ingestion asks for one at most once a second a process (fold_soon) and beat one every 15 s;
    # a fold that finds another running, or nothing to do, returns at once. A kill mid-batch rolls
    # that batch back.
    if cache.add("telemetry:partitions-ensured", 1, timeout=PARTITIONS_CHECK_S):
        # The coming month's partition exists before its first event, whether or not anyone runs
        # `manage.py retention` (which does the same); without it events would land in DEFAULT.
        # A worker connected as the application's role may not create tables (grant_app_role):
        # then the daily `manage.py retention`, run as the tables' owner, does it.
        try:
            partitions_ensure(timezone.now())
        except DatabaseError as exc:
            log.warning("could not create the coming month's event partition: %s", exc)
    folded = events_fold(max_seconds=45.0)
    if folded:
        guardrails_soon()
    return folded


_fold_window = ProcessWindow()


def fold_soon() -> None:
    """Called after a commit that queued events: a fold runs within FOLD_NOTICE_S (plus the time to
    fold), one message a process per FOLD_NOTICE_S however many batches commit.

    The message asks for a fold FOLD_NOTICE_S from now; a batch committed before then is queued
    when that fold starts, so it sends nothing. The queue rows, not the message, are what must not
    be lost: a message lost with a broker or worker leaves them to the next fold, and beat runs one
    every 15 s (rolloutops/settings.py, CELERY_BEAT_SCHEDULE)."""
    if not _fold_window.open(FOLD_NOTICE_S):
        return
    try:
        fold_events.apply_async(countdown=FOLD_NOTICE_S)
    except Exception:
        # The batch is stored and queued: the next ask, or beat, folds it. Ask again next time.
        _fold_window.reset()
        raise


def guardrails_soon() -> None:
    """New figures: let the guardrails look within seconds rather than at the next beat
    (docs/decisions.md), at most once per window however many folds run."""
    if cache.add("telemetry:guardrails-soon", 1, timeout=GUARDRAIL_DEBOUNCE_S):
        current_app.send_task("rollouts.evaluate_guardrails_all", countdown=GUARDRAIL_DEBOUNCE_S)


@shared_task(name="telemetry.apply_retention", ignore_result=True, soft_time_limit=3300, time_limit=3600)
def apply_retention() -> dict:
    """Daily (beat): raw events past EVENT_RETENTION_DAYS go, rollups stay (telemetry/retention.py).
    Dropping a month's partition needs the tables' owner: a worker connected as the application's
    role (grant_app_role) logs why it could not, and the owner's `manage.py retention --apply` does it."""
    try:
        done = retention_apply(now=timezone.now())
    except DatabaseError as exc:
        log.warning("retention could not run with this database role: %s", exc)
        return {"error": str(exc)[:300]}
    log.info("retention applied", extra={"events": done.events, "discrepant_pairs": done.discrepant_pairs})
    return {"events": done.events, "discrepant_pairs": done.discrepant_pairs}
