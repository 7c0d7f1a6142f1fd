"""A real Celery worker seals what committed writes recorded: one request per burst, not per write."""
import time

import pytest
from django.db import transaction

from rolloutops import audit
from rolloutops.audit import audit_record, audit_verify
from rolloutops.celery import app
from rolloutops.models import AuditEntry
from tests.workers import celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(settings):
    settings.AUDIT_CHECKPOINT_KEY = "worker-test-audit-key-" + "w" * 30
    app.control.purge()  # only what this test asks for
    with celery_worker(log_prefix="audit_worker_", env={"AUDIT_CHECKPOINT_KEY": settings.AUDIT_CHECKPOINT_KEY}) as running:
        yield running


def test_a_burst_of_audited_writes_is_sealed_by_one_worker_run(worker, settings, monkeypatch):
    process, log = worker
    settings.AUDIT_SEAL_DELAY_SECONDS = 0.5
    audit._seal_window.reset()
    for i in range(5):
        with transaction.atomic():  # five commits, each asking for sealing
            audit_record(actor=None, action="test.burst", object_repr=f"write {i}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and AuditEntry.objects.filter(seq__isnull=True).exists():
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    assert not AuditEntry.objects.filter(seq__isnull=True).exists(), log.read_text()[-3000:]
    assert list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2, 3, 4, 5]
    assert audit_verify().intact
    runs = log.read_text().count("rolloutops.seal_audit[")
    assert runs == 2, log.read_text()[-3000:]  # "received" and "succeeded" of one run
