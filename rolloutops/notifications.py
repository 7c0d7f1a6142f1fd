"""Notifications: one call for every app (rollback, promotion, SLA breach, flagged segment).
Delivery leaves the database, so it happens after commit, in a Celery task that retries."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.request

from celery import shared_task
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

log = logging.getLogger("rolloutops.notifications")

KINDS = (
    "rollout.rolled_back", "rollout.promoted", "promotion.requested", "promotion.decided",
    "ticket.sla_breached", "segment.flagged",
)


def notify(*, kind: str, summary: str, payload: dict, severity: str = "info") -> None:
    """Announce `kind` to every configured webhook once the surrounding transaction commits."""
    body = {
        "kind": kind,
        "summary": summary,
        "severity": severity,  # info | warning | critical — maps onto PagerDuty Events v2
        "at": timezone.now().isoformat(),
        "payload": payload,
    }
    log.info("notification", extra={"kind": kind, "summary": summary})
    data = json.dumps(body, cls=DjangoJSONEncoder)
    for url in settings.ROLLOUTOPS["WEBHOOK_URLS"]:
        transaction.on_commit(lambda url=url: deliver_webhook.delay(url, data))


def sign(data: str) -> str:
    secret = settings.ROLLOUTOPS["WEBHOOK_SECRET"].encode()
    return hmac.new(secret, data.encode(), hashlib.sha256).hexdigest()


@shared_task(name="rolloutops.deliver_webhook", ignore_result=True, autoretry_for=(OSError,),
             retry_backoff=5, retry_backoff_max=600, max_retries=8, soft_time_limit=20, time_limit=30)
def deliver_webhook(url: str, data: str) -> None:
    request = urllib.request.Request(url, data=data.encode(), method="POST", headers={
        "Content-Type": "application/json",
        "X-Rolloutops-Signature": f"sha256={sign(data)}",
    })
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (operator-configured URL)
        if response.status >= 300:
            raise OSError(f"webhook {url} answered {response.status}")
