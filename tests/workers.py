"""A real Celery worker process for the tests that need one (the path production takes): the test
database as the worker's DATABASE_URL, the broker and var folder this process publishes to."""
import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection


def database_url() -> str:
    """The TEST database as a DATABASE_URL the worker's settings will read."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextlib.contextmanager
def celery_worker(*, log_prefix: str, env: dict | None = None):
    """Yields (process, log path) of a solo worker on the default queue; stops it afterwards."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "SECRET_KEY": os.environ.get("SECRET_KEY", "worker-test"),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        # The filesystem broker's folders must be the ones this process publishes to.
        "ROLLOUTOPS_VAR_DIR": str(settings.VAR_DIR),
        **(env or {}),
    }
    log = tempfile.NamedTemporaryFile("w+", prefix=log_prefix, suffix=".log", delete=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "rolloutops", "worker", "--pool=solo", "-Q", "celery",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=settings.BASE_DIR, env=environment, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        yield process, Path(log.name)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
