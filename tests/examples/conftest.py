"""Fixtures of the examples' tests: the live server over plain HTTP, and a way to run an example as its
users do (a separate Python process)."""
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client import conftest as client_fixtures

# The live server over plain HTTP, as the client's tests have it.
live_server_plain_http = client_fixtures.live_server_plain_http
live_server = client_fixtures.live_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def run_example():
    """run_example("otel_agent.py", "--url", …) → its stdout; fails the test with its output if it fails."""

    def run(name: str, *args: str, timeout: float = 120) -> str:
        done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, f"{name} exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return done.stdout

    return run
