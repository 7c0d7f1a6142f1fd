"""A web process freezes its start-up heap (rolloutops/heap.py): the garbage collector's full
collections walk what requests leave behind, not Django's and the apps' own objects."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.test_settings import SETTINGS_ENV

ROOT = Path(__file__).resolve().parents[2]
# What a process reports after importing the WSGI (or ASGI) application, as gunicorn does.
PROBE = """
import gc, json, sys
import {module}
print(json.dumps({{"frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects()),
                  "urlconf_loaded": "console.api" in sys.modules}}))
"""


def start_up(module: str, tmp_path, **env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV and not k.startswith("PYTEST")}
    clean.update({"ROLLOUTOPS_VAR_DIR": str(tmp_path / "var"), "DJANGO_SETTINGS_MODULE": "rolloutops.settings", **env})
    result = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT, env=clean,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["rolloutops.wsgi", "rolloutops.asgi"])
def test_a_web_process_starts_with_its_urlconf_loaded_and_its_heap_frozen(module, tmp_path):
    report = start_up(module, tmp_path)
    assert report["urlconf_loaded"]  # the first request does not import the API
    assert report["frozen"] > 50_000  # Django, the apps and their libraries
    assert report["tracked"] < report["frozen"] / 10  # what a full collection still walks


def test_gc_freeze_off_leaves_the_collector_as_python_sets_it(tmp_path):
    report = start_up("rolloutops.wsgi", tmp_path, GC_FREEZE="0")
    assert report["frozen"] == 0
