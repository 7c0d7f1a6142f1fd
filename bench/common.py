"""Shared by the benchmarks under bench/: the one JSON line a run ends with under --json (bench/README.md)."""
from __future__ import annotations

import json
import sys


def emit_json(bench: str, ratio: float, **figures) -> None:
    """Print one JSON line: the benchmark's name, its ratio against the same run's baseline, its figures."""
    sys.stdout.write(json.dumps({"bench": bench, "ratio": round(ratio, 3), **figures}, default=str) + "\n")
    sys.stdout.flush()
