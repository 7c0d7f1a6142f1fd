"""Shared by the benchmarks under bench/: the one JSON line a run ends with under --json (bench/README.md)."""
from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def emit_json(bench: str, ratio: float, **figures) -> None:
    """Print one JSON line: the benchmark's name, its ratio against the same run's baseline, its figures."""
    sys.stdout.write(json.dumps({"bench": bench, "ratio": round(ratio, 3), **figures}, default=str) + "\n")
    sys.stdout.flush()


def log_file(name: str, mode: str = "w"):
    """A log under var/ (git-ignored; a fresh clone has no var/ until something writes there)."""
    (ROOT / "var").mkdir(exist_ok=True)
    return open(ROOT / "var" / name, mode)  # noqa: SIM115 (closed with the process)


def wait_until_healthy(server: subprocess.Popen, port: int, log: str, seconds: float = 30) -> subprocess.Popen:
    """`server` once its GET /healthz answers 200 on 127.0.0.1:`port`; stopped, and the run ended
    pointing at `log`, if it does not within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"gunicorn did not answer on port {port}; see {log}")
