"""Benchmark: audited writes from many connections at once, with the audit chain's previous design
(one global lock held from the entry to the commit) and the outbox (docs/audit.md), in one run.

W writer threads, each with its own PostgreSQL connection, run transactions for a fixed time:
record an audit entry, then do the rest of the transaction (`--hold-ms` of work after the entry,
as a service does after its audit_record call: more statements, a slower commit on a replicated
database). "global lock" takes the advisory lock and reads the chain's head first, as every audited
write used to; "outbox" is audit_record as it is. Afterwards every entry is sealed and the chain
verified. Prints writes/s of each and their ratio, and with --json one JSON line.

    .venv/bin/python bench/audit_writes.py                       # 16 writers, 2 ms after the entry
    .venv/bin/python bench/audit_writes.py --hold-ms 0 --json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/rolloutops_bench_audit"
OLD_LOCK = 7310244117  # the lock every audited write took before the outbox


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0, help="per design")
    parser.add_argument("--hold-ms", type=float, default=2.0, help="work in the transaction after the entry")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


def setup(args) -> None:
    import subprocess

    import psycopg

    parts = urlparse(args.database_url)
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        name = parts.path.lstrip("/")
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": args.database_url, "SECRET_KEY": os.environ.get("SECRET_KEY", "bench"),
           "AUDIT_CHECKPOINT_KEY": os.environ.get("AUDIT_CHECKPOINT_KEY", "bench-audit-key-not-secret"),
           "LOG_LEVEL": "WARNING"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rolloutops.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def run(args, design: str) -> tuple[int, float]:
    from django.db import connection, transaction

    from rolloutops.audit import audit_record

    stop_at = [0.0]
    counts = [0] * args.writers
    barrier = threading.Barrier(args.writers + 1)
    errors = []

    def writer(n):
        try:
            barrier.wait()
            with connection.cursor() as cursor:
                while time.monotonic() < stop_at[0]:
                    with transaction.atomic():
                        if design == "global lock":
                            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [OLD_LOCK])
                            cursor.execute("SELECT hash FROM rolloutops_auditentry ORDER BY id DESC LIMIT 1")
                        audit_record(actor=None, action="bench.write", object_type="bench.writer", object_id=n,
                                     object_repr=f"writer {n}", after={"i": counts[n]})
                        if args.hold_ms:
                            cursor.execute("SELECT pg_sleep(%s)", [args.hold_ms / 1000])
                    counts[n] += 1
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(args.writers)]
    for t in threads:
        t.start()
    stop_at[0] = time.monotonic() + args.seconds
    started = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} writer(s) failed, first: {errors[0]!r}")
    return sum(counts), elapsed


def main() -> None:
    args = parse_args()
    setup(args)
    from django.conf import settings

    from rolloutops.audit import audit_seal, audit_verify

    settings.AUDIT_SEAL_DELAY_SECONDS = 3600  # no sealing requests from the writers: sealed once below
    audit_seal()
    figures = {}
    for design in ("global lock", "outbox"):
        writes, elapsed = run(args, design)
        figures[design] = writes / elapsed
        print(f"{design:<12} {args.writers} writers, {args.hold_ms:g} ms after the entry: "
              f"{writes:>7} audited writes in {elapsed:5.2f} s = {writes / elapsed:8.1f}/s")
    started = time.perf_counter()
    sealed = audit_seal()
    seal_s = time.perf_counter() - started
    report = audit_verify()
    ratio = figures["outbox"] / figures["global lock"]
    print(f"outbox / global lock: {ratio:.2f}x; then {sealed} entries sealed in {seal_s:.2f} s "
          f"({sealed / seal_s:,.0f}/s), chain {'intact' if report.intact else 'BROKEN: ' + str(report.problem)}")
    if args.json:
        print(json.dumps({"bench": "audit_writes", "writers": args.writers, "hold_ms": args.hold_ms,
                          "baseline": {"name": "global lock", "writes_per_s": round(figures["global lock"], 1)},
                          "outbox": {"writes_per_s": round(figures["outbox"], 1)}, "ratio": round(ratio, 2),
                          "sealed": sealed, "seal_per_s": round(sealed / seal_s), "audit_intact": report.intact}))
    if not report.intact:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
