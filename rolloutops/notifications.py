"""Notifications: one call for every app (rollback, promotion, SLA breach, flagged segment).
Delivery leaves the database, so it happens after commit, in a Celery task that retries.

A webhook URL is posted our own JSON, signed with HMAC-SHA256 (`X-Rolloutops-Signature`), unless
it names an adapter: `slack+https://hooks.slack.com/…` posts Slack's `{"text": …}`, and
`pagerduty+https://events.pagerduty.com/v2/enqueue#ROUTING_KEY` posts a PagerDuty Events v2 event."""
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


_PAGERDUTY_SEVERITY = {"info": "info", "warning": "warning", "critical": "critical"}


def adapt(url: str, data: str) -> tuple[str, str]:
    """(address to post to, body) for a configured URL and our JSON body."""
    if url.startswith("slack+"):
        body = json.loads(data)
        icon = {"critical": ":rotating_light:", "warning": ":warning:"}.get(body["severity"], ":information_source:")
        return url[len("slack+"):], json.dumps({"text": f"{icon} rolloutops · {body['kind']}: {body['summary']}"})
    if url.startswith("pagerduty+"):
        body = json.loads(data)
        address, _, routing_key = url[len("pagerduty+"):].partition("#")
        payload = body["payload"]
        dedup = f"rolloutops-{body['kind']}-{payload.get('rollout') or payload.get('ticket') or payload.get('promotion') or ''}"
        return address, json.dumps({
            "routing_key": routing_key, "event_action": "trigger", "dedup_key": dedup,
            "payload": {"summary": body["summary"][:1024], "source": "rolloutops", "component": body["kind"],
                        "severity": _PAGERDUTY_SEVERITY.get(body["severity"], "info"), "timestamp": body["at"],
                        "custom_details": payload},
        }, cls=DjangoJSONEncoder)
    return url, data


@shared_task(name="rolloutops.deliver_webhook", ignore_result=True, autoretry_for=(OSError,),
             retry_backoff=5, retry_backoff_max=600, max_retries=8, soft_time_limit=20, time_limit=30)
def deliver_webhook(url: str, data: str) -> None:
    url, data = adapt(url, data)
    request = urllib.request.Request(url, data=data.encode(), method="POST", headers={
        "Content-Type": "application/json",
        "X-Rolloutops-Signature": f"sha256={sign(data)}",
    })
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (operator-configured URL)
        if response.status >= 300:
            raise OSError(f"webhook {url} answered {response.status}")
