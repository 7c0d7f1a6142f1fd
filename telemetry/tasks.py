"""Celery tasks of the telemetry app: thin callers of the fold."""
from celery import shared_task
from django.db import OperationalError

from .fold import events_fold


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
    # Ingestion enqueues one per batch and beat one every 15 s; a fold that finds another
    # running, or nothing to do, returns at once. A kill mid-batch rolls that batch back.
    return events_fold(max_seconds=45.0)
