"""The client package stands alone: importable without Django, typed, runnable as a module."""
import subprocess
import sys
from importlib import metadata
from importlib.resources import files


def test_importing_the_client_loads_no_django():
    code = "import sys, rolloutops_client; print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_distribution_declares_no_django_and_ships_its_type_marker():
    requires = metadata.requires("rolloutops-client") or []
    assert requires and not any(r.lower().startswith("django") for r in requires)
    assert files("rolloutops_client").joinpath("py.typed").is_file()
