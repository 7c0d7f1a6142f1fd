"""Periodic escalation work (scheduled in settings.CELERY_BEAT_SCHEDULE): lapsed leases, SLA breaches."""
from celery import shared_task
from django.db import InterfaceError, OperationalError

from .services import tickets_notify_sla_breaches, tickets_sweep_expired_leases


@shared_task(name="escalations.sweep_leases", ignore_result=True, autoretry_for=(OperationalError, InterfaceError),
             retry_backoff=5, max_retries=3, soft_time_limit=50, time_limit=60)
def sweep_leases() -> int:
    return tickets_sweep_expired_leases()


@shared_task(name="escalations.notify_sla_breaches", ignore_result=True,
             autoretry_for=(OperationalError, InterfaceError), retry_backoff=5, max_retries=3,
             soft_time_limit=50, time_limit=60)
def notify_sla_breaches() -> int:
    return tickets_notify_sla_breaches()
