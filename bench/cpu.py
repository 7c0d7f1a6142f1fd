"""CPU seconds spent by the processes a benchmark starts (Linux /proc): a gunicorn master's workers,
and the PostgreSQL backends serving one database. Read before and after a phase, the difference
divided by the requests of the phase is what one request costs each tier (docs/scaling.md uses these
figures to size web hosts and the database). Elsewhere than Linux every figure is None."""
from __future__ import annotations

import os

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def database_backends(database: str) -> list[int]:
    """Backends of `database`, found through pg_stat_activity over the caller's Django connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database])
        return [row[0] for row in cursor.fetchall()]


class CpuMeter:
    """Sum of CPU seconds of the processes `pids()` names, now: call `read()` before and after."""

    def __init__(self, pids):
        self.pids = pids
        self.seen: dict[int, float] = {}

    def read(self) -> float | None:
        if not os.path.exists("/proc/self/stat"):
            return None
        for pid in self.pids():
            self.seen[pid] = _cpu_seconds(pid)  # processes that ended keep their last reading
        return sum(self.seen.values())


def per_request_ms(before: float | None, after: float | None, requests: int) -> float | None:
    if before is None or after is None or not requests:
        return None
    return round((after - before) / requests * 1000, 3)


def machine_busy_seconds() -> float | None:
    """CPU seconds every core of the machine has spent busy (all but idle and I/O wait), now: the
    whole cost of a phase, whoever paid it (clients, web, database, cache, kernel)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _TICK  # user nice system idle iowait irq softirq steal


class MachineMeter:
    """CpuMeter's reading for the whole machine."""

    def read(self) -> float | None:
        return machine_busy_seconds()
