"""A real Celery worker process folds what the API ingested (the path production takes)."""
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from telemetry.models import StageHour
from telemetry.selectors import rollout_discrepancy
from tests.telemetry.factories import T0

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    """The TEST database as a DATABASE_URL the worker's settings will read."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker():
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "SECRET_KEY": os.environ.get("SECRET_KEY", "worker-test"),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        # The filesystem broker's folders must be the ones this process publishes to.
        "ROLLOUTOPS_VAR_DIR": str(settings.VAR_DIR),
    }
    log = tempfile.NamedTemporaryFile("w+", prefix="h_telemetry_worker_", suffix=".log", delete=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "rolloutops", "worker", "--pool=solo", "-Q", "celery",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    yield process, Path(log.name)
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


def test_worker_folds_events_ingested_through_the_api(worker, events_client, shadow_rollout):
    process, log = worker
    slug = shadow_rollout.agent.slug
    at = (T0 + timedelta(hours=3)).isoformat()
    events = []
    for i in range(50):
        events += [{"agent": slug, "request_key": f"w{i}", "kind": "agent", "label": "yes", "occurred_at": at},
                   {"agent": slug, "request_key": f"w{i}", "kind": "human", "label": "yes" if i % 5 else "no",
                    "occurred_at": at}]
    # A transactional test commits, so on_commit enqueues telemetry.fold_events to the real broker.
    assert events_client.post("/api/v1/events", {"events": events}).json()["accepted"] == 100

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not StageHour.objects.filter(rollout=shadow_rollout).exists():
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.25)
    assert StageHour.objects.filter(rollout=shadow_rollout).exists(), log.read_text()[-3000:]
    report = rollout_discrepancy(rollout_id=shadow_rollout.pk)
    assert (report["pairs"], report["agreements"], report["pending_events"]) == (50, 40, 0)
