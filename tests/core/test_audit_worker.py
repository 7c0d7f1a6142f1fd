"""A real Celery worker seals what committed writes recorded: one request per burst, not per write."""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection, transaction

from rolloutops import audit
from rolloutops.audit import audit_record, audit_verify
from rolloutops.celery import app
from rolloutops.models import AuditEntry

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(settings):
    settings.AUDIT_CHECKPOINT_KEY = "worker-test-audit-key-" + "w" * 30
    app.control.purge()  # only what this test asks for
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "SECRET_KEY": os.environ.get("SECRET_KEY", "worker-test"),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "ROLLOUTOPS_VAR_DIR": str(settings.VAR_DIR),
        "AUDIT_CHECKPOINT_KEY": settings.AUDIT_CHECKPOINT_KEY,
    }
    log = tempfile.NamedTemporaryFile("w+", prefix="audit_worker_", suffix=".log", delete=False)
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


def test_a_burst_of_audited_writes_is_sealed_by_one_worker_run(worker, settings, monkeypatch):
    process, log = worker
    settings.AUDIT_SEAL_DELAY_SECONDS = 0.5
    monkeypatch.setattr(audit, "_next_request_at", 0.0)
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
