"""Celery tasks of the cross-app records: sealing the audit trail and checkpointing its head."""
from celery import shared_task
from django.db import OperationalError

from .audit import audit_seal
from .audit_checkpoints import audit_checkpoint


@shared_task(name="rolloutops.seal_audit", ignore_result=True, autoretry_for=(OperationalError,),
             retry_backoff=2, max_retries=5, soft_time_limit=120, time_limit=150)
def seal_audit() -> None:
    audit_seal()


@shared_task(name="rolloutops.checkpoint_audit", ignore_result=True, autoretry_for=(OperationalError,),
             retry_backoff=5, max_retries=5, soft_time_limit=120, time_limit=150)
def checkpoint_audit() -> None:
    audit_checkpoint()
