"""A real Celery worker process folds what the API ingested (the path production takes)."""
import time
from datetime import timedelta

import pytest

from telemetry import tasks
from telemetry.models import StageHour, UnfoldedEvent
from telemetry.selectors import rollout_discrepancy
from tests.telemetry.factories import T0
from tests.workers import celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(monkeypatch):
    # A fold asked for by an earlier test of this process went to no worker: this test's batches ask anew.
    tasks._fold_window.reset()
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


def test_batches_committed_while_a_fold_is_asked_for_are_folded_by_it(worker, events_client, shadow_rollout):
    # Ingestion sends one fold message a second a process (telemetry.tasks.fold_soon): the second
    # and third batches send none, and the fold the first asked for must still count them.
    # The worker is up first, so a fold that ran at once would run between the batches and miss them.
    process, log = worker
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and " ready." not in log.read_text():
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.1)
    slug = shadow_rollout.agent.slug
    at = (T0 + timedelta(hours=4)).isoformat()
    for batch in range(3):
        events = [{"agent": slug, "request_key": f"b{batch}-{i}", "kind": kind, "label": "yes", "occurred_at": at}
                  for i in range(20) for kind in ("agent", "human")]
        assert events_client.post("/api/v1/events", {"events": events}).json()["accepted"] == 40
        time.sleep(0.25)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and UnfoldedEvent.objects.exists():
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.25)
    assert not UnfoldedEvent.objects.exists(), log.read_text()[-3000:]
    assert rollout_discrepancy(rollout_id=shadow_rollout.pk)["pairs"] == 60
