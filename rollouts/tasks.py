"""Celery tasks of the rollouts app: thin callers of monitor.py."""
from celery import shared_task
from django.db import OperationalError

from .monitor import rollout_watch, rollouts_watch_all


@shared_task(name="rollouts.evaluate_guardrails_all", ignore_result=True, soft_time_limit=25, time_limit=30,
             autoretry_for=(OperationalError,), retry_backoff=2, max_retries=3)
def evaluate_guardrails_all() -> dict:
    return rollouts_watch_all()


@shared_task(name="rollouts.evaluate_guardrails", ignore_result=True, soft_time_limit=25, time_limit=30,
             autoretry_for=(OperationalError,), retry_backoff=2, max_retries=3)
def evaluate_guardrails(rollout_id: int) -> str:
    return rollout_watch(rollout_id=rollout_id)
