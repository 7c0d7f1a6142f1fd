"""A real Celery worker process folds what the API ingested (the path production takes)."""
import time
from datetime import timedelta

import pytest

from telemetry.models import StageHour
from telemetry.selectors import rollout_discrepancy
from tests.telemetry.factories import T0
from tests.workers import celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker():
    with celery_worker(log_prefix="h_telemetry_worker_") as running:
        yield running


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
