"""manage.py demo: one command brings up the database, demo people, a Celery worker and the pages; SIGTERM stops all."""
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.core.test_settings import ROOT, SETTINGS_ENV

pytestmark = pytest.mark.worker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def fetch_gzip(url: str):
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.headers, response.read()


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            fetch(url)
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds}s")


def test_demo_serves_pages_runs_a_worker_and_stops_cleanly(tmp_path: Path):
    port = free_port()
    db = tmp_path / "demo.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    # A database of its own (so the project's db.sqlite3 is left alone), otherwise the embedded set-up.
    env.update({"DATABASE_URL": f"sqlite:///{db}", "SECRET_KEY": "demo-test", "SECURE_SSL_REDIRECT": "false",
                "ROLLOUTOPS_VAR_DIR": str(tmp_path / "var")})
    demo = subprocess.Popen([sys.executable, "manage.py", "demo", "--port", str(port), "--no-seed"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        status, body = fetch(f"http://127.0.0.1:{port}/login/")
        assert status == 200 and b'name="password"' in body
        # Static files as in production: hashed names, gzipped, cached for a year (WhiteNoise).
        stylesheet = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', body.decode()).group(1)
        status, headers, _ = fetch_gzip(f"http://127.0.0.1:{port}{stylesheet}")
        assert status == 200 and headers["Content-Encoding"] == "gzip" and "immutable" in headers["Cache-Control"]
        manifest = json.loads((tmp_path / "var" / "static" / "staticfiles.json").read_text())
        plotly = manifest["paths"]["vendor/plotly/plotly-partial.min.js"]
        status, headers, body = fetch_gzip(f"http://127.0.0.1:{port}/static/{plotly}")
        assert status == 200 and headers["Content-Encoding"] == "gzip" and "max-age=315360000" in headers["Cache-Control"]
        assert len(body) < 500_000  # the partial bundle, gzipped (the full plotly.js is 4.8 MB)
        worker_log = tmp_path / "var" / "celery-worker.log"
        deadline = time.monotonic() + 30
        while " ready." not in worker_log.read_text(errors="replace") and time.monotonic() < deadline:
            time.sleep(0.3)
        assert " ready." in worker_log.read_text(errors="replace")
    finally:
        demo.send_signal(signal.SIGTERM)
        output, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, output
    assert f"open http://127.0.0.1:{port}/" in output
    assert "demo-pass-2026" in output and "olivia" in output and "rita" in output and "maya" in output
    assert "Stopped." in output
    # The example agent runtime ran beside it (it keeps the demo's live stages from going silent) and stopped.
    assert "Agent runtime (examples/support_runtime.py" in output and "Stopping the agent runtime" in output
    assert (tmp_path / "var" / "support-runtime.log").exists()
    log = (tmp_path / "var" / "celery-worker.log").read_text(errors="replace")
    assert "Warm shutdown" in log

    with sqlite3.connect(db) as conn:
        people = dict(conn.execute(
            "SELECT u.username, g.name FROM auth_user u JOIN auth_user_groups ug ON ug.user_id = u.id "
            "JOIN auth_group g ON g.id = ug.group_id").fetchall())
    assert people == {"olivia": "operator", "rita": "reviewer", "maya": "manager"}
