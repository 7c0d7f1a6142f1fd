"""Webhooks: signed JSON after commit, Slack and PagerDuty adapters, delivered over real HTTP."""
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from rolloutops.notifications import deliver_webhook, notify

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            received.append({"path": self.path, "headers": dict(self.headers), "body": body})
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()


def test_nothing_leaves_before_commit_and_the_body_is_signed(settings, receiver, django_capture_on_commit_callbacks):
    base, received = receiver
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "WEBHOOK_URLS": [f"{base}/hook"], "WEBHOOK_SECRET": "s3cret"}
    with django_capture_on_commit_callbacks() as callbacks:
        notify(kind="rollout.rolled_back", severity="critical", summary="rolled back", payload={"rollout": 7})
        assert received == []
    assert len(callbacks) == 1
    body = json.dumps({"kind": "rollout.rolled_back", "summary": "rolled back", "severity": "critical",
                       "at": "2026-11-24T00:00:00+00:00", "payload": {"rollout": 7}})
    deliver_webhook.run(f"{base}/hook", body)
    signature = received[0]["headers"]["X-Rolloutops-Signature"]
    assert signature == "sha256=" + hmac.new(b"s3cret", body.encode(), hashlib.sha256).hexdigest()
    assert json.loads(received[0]["body"])["payload"] == {"rollout": 7}


def test_slack_and_pagerduty_adapters(receiver):
    base, received = receiver
    body = json.dumps({"kind": "rollout.rolled_back", "summary": "fraud 3.1.0 rolled back", "severity": "critical",
                       "at": "2026-11-24T00:00:00+00:00", "payload": {"rollout": 4}})
    deliver_webhook.run(f"slack+{base}/slack", body)
    deliver_webhook.run(f"pagerduty+{base}/v2/enqueue#R0UTING", body)
    slack, pagerduty = (json.loads(r["body"]) for r in received)
    assert slack == {"text": ":rotating_light: rolloutops · rollout.rolled_back: fraud 3.1.0 rolled back"}
    assert received[1]["path"] == "/v2/enqueue"
    assert pagerduty["routing_key"] == "R0UTING" and pagerduty["event_action"] == "trigger"
    assert pagerduty["payload"]["severity"] == "critical" and pagerduty["dedup_key"] == "rolloutops-rollout.rolled_back-4"


def test_a_failing_endpoint_raises_so_celery_retries(receiver):
    with pytest.raises(OSError):
        deliver_webhook.run("http://127.0.0.1:9/unreachable", "{}")
