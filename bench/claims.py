"""Benchmark: N concurrent reviewers draining an escalation queue through the HTTP API.

Runs the real app under gunicorn on PostgreSQL, with a Celery worker sealing the audit trail as
production does, bulk-creates open tickets, then has every reviewer (a thread with its own HTTP
client and its own database connection) call POST /api/v1/escalations/claim-next with its bearer
token until the queue answers 204. Checks that every ticket was claimed exactly once (none twice,
none lost) and that every claim's audit entry is sealed into a chain that verifies, and prints
claims/s and p50/p99 latency beside a baseline: GET /healthz from the same clients.

    .venv/bin/python bench/claims.py                  # 10,000 tickets, 20 reviewers
    .venv/bin/python bench/claims.py --tickets 500    # a quick run
    .venv/bin/python bench/claims.py --json           # … and one JSON line at the end

The baseline is measured before and after the claims (their mean is the ratio's denominator), and
each phase reports the CPU milliseconds a request costs the web workers, the database, the sealer,
this script's own client threads, and the whole machine (every core's busy time, /proc/stat: what
the tiers named leave out — the cache, the kernel, PostgreSQL's own processes — is the difference).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from urllib.parse import urlparse

from common import ROOT, emit_json, log_file, wait_until_healthy
from cpu import CpuMeter, MachineMeter, children, database_backends, per_request_ms

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/rolloutops_bench_claims"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--no-worker", action="store_true",
                        help="no Celery worker during the run (the audit entries are sealed at the end)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line holding the figures")
    return parser.parse_args()


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def server_env(args) -> dict:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": args.database_url,
        "SECRET_KEY": env.get("SECRET_KEY", "bench-claims-not-secret"),
        "AUDIT_CHECKPOINT_KEY": env.get("AUDIT_CHECKPOINT_KEY", "bench-claims-audit-key-not-secret"),
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DB_CONN_MAX_AGE": "60",  # what production runs with: one connection per web process
        "LOG_LEVEL": "WARNING",
    })
    return env


def prepare(args) -> tuple[list[tuple[int, str]], list[int]]:
    """Migrate, reset the bench agent's tickets, create reviewers with tokens and N open tickets."""
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=server_env(args),
                   check=True)
    os.environ.update(server_env(args))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rolloutops.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from agents.models import Agent
    from escalations.models import EscalationTicket, Priority, Reason
    from rolloutops.tokens import token_issue

    agent, _ = Agent.objects.get_or_create(slug="bench-claims", defaults={"name": "Bench claims", "owner_team": "bench"})
    EscalationTicket.objects.filter(agent=agent).delete()
    # Only this run's tickets may be claimable: leftovers (another script's, or leases that lapsed
    # since) would be claimed too and blur both the rate and the exactly-once check.
    EscalationTicket.objects.exclude(status="resolved").delete()
    group = Group.objects.get(name="reviewer")
    reviewers = []
    for i in range(args.reviewers):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-reviewer-{i:02d}")
        user.groups.add(group)
        _, raw = token_issue(user=user, scopes="user", name=f"bench-claims-{int(time.time())}-{i}")
        reviewers.append((user.pk, raw))

    now = timezone.now()
    rng = random.Random(6)
    context = {"input": {"text": "Customer asks for a refund outside the window"},
               "attempts": [{"tool": "order_lookup", "arguments": {"order": "A-1"}, "result": {"age_days": 45},
                             "duration_ms": 80}],
               "partial_output": "Probably deny", "confidence": 0.42}
    rows = []
    for n in range(args.tickets):
        priority = rng.choice(Priority.values)
        created = now - timedelta(seconds=args.tickets - n)
        rows.append(EscalationTicket(
            agent=agent, request_key=f"bench-{n}", reason=rng.choice(Reason.values), priority=priority,
            context=context, has_context=True, created_at=created,
            due_at=created + timedelta(seconds=settings.ROLLOUTOPS["SLA_SECONDS"][priority]),
        ))
    created = EscalationTicket.objects.bulk_create(rows, batch_size=2000)
    from django.db import connection

    # Earlier runs' claims left dead rows and index entries behind; autovacuum would clear them in
    # time (it may be off on a development server), so every run starts from a vacuumed queue.
    with connection.cursor() as cursor:
        for table in ("escalations_escalationticket", "escalations_ticketevent", "rolloutops_auditentry"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    connection.close()
    return reviewers, [t.pk for t in created]


def start_server(args) -> subprocess.Popen:
    log = log_file("bench-claims-gunicorn.log")
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "rolloutops.wsgi", "-w", str(args.web_workers),
         "-b", f"127.0.0.1:{args.port}", "--backlog", "256"],
        cwd=ROOT, env=server_env(args), stdout=log, stderr=subprocess.STDOUT,
    )
    return wait_until_healthy(server, args.port, "var/bench-claims-gunicorn.log")


def start_worker(args) -> subprocess.Popen:
    """One worker process, as a small deployment runs: it seals audit entries while claims go on."""
    log = log_file("bench-claims-worker.log")
    return subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "celery"), "-A", "rolloutops", "worker", "-l", "WARNING", "--pool", "solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=server_env(args), stdout=log, stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def audit_after(ticket_ids: list[int], wait_seconds: float) -> dict:
    """Wait for the worker to seal the claims' entries, seal what is left, verify the chain."""
    from rolloutops import audit
    from rolloutops.models import AuditEntry

    claims = AuditEntry.objects.filter(action="ticket.claimed", object_type="escalations.escalationticket",
                                       object_id__in=[str(pk) for pk in ticket_ids])
    has_outbox = hasattr(audit, "audit_seal")  # the chain before the outbox sealed inside each write
    started = time.monotonic()
    unsealed = claims.filter(seq__isnull=True).count() if has_outbox else 0
    while has_outbox and unsealed and time.monotonic() - started < wait_seconds:
        time.sleep(0.2)
        unsealed = claims.filter(seq__isnull=True).count()
    lag = time.monotonic() - started
    if has_outbox:
        audit.audit_seal()
    report = audit.audit_verify()
    return {"audit_entries": claims.count(), "unsealed_when_done": unsealed, "seal_lag_s": round(lag, 2),
            "audit_intact": report.intact, "audit_problem": report.problem}


def run_clients(count: int, work) -> tuple[list, float]:
    results, errors = [None] * count, []
    barrier = threading.Barrier(count + 1)

    def run(i):
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} client(s) failed, first: {errors[0]!r}")
    return results, elapsed


def settle(meter: CpuMeter, quiet_ms: float = 20.0, limit_s: float = 60.0) -> None:
    """Wait until the processes `meter` reads spend under `quiet_ms` of CPU in half a second."""
    deadline = time.monotonic() + limit_s
    last = meter.read()
    while last is not None and time.monotonic() < deadline:
        time.sleep(0.5)
        now = meter.read()
        if (now - last) * 1000 < quiet_ms:
            return
        last = now


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(name: str, count: int, elapsed: float, latencies: list[float]) -> dict:
    rate = count / elapsed
    p50, p99 = percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000
    print(f"{name:<28} {count:>7} requests in {elapsed:6.2f} s = {rate:8.1f}/s   p50 {p50:6.1f} ms   p99 {p99:7.1f} ms")
    return {"rate": rate, "p50": p50, "p99": p99}


def main() -> None:
    args = parse_args()
    ensure_database(args.database_url)
    print(f"preparing {args.tickets} open tickets and {args.reviewers} reviewers on {args.database_url}")
    reviewers, ticket_ids = prepare(args)
    server = start_server(args)
    worker = None if args.no_worker else start_worker(args)
    database = urlparse(args.database_url).path.lstrip("/")
    meters = {"web": CpuMeter(lambda: children(server.pid)), "database": CpuMeter(lambda: database_backends(database)),
              "sealer": CpuMeter(lambda: [worker.pid] if worker else []),
              "clients": CpuMeter(lambda: [os.getpid()]), "machine": MachineMeter()}

    def cpu_now() -> dict:
        return {name: meter.read() for name, meter in meters.items()}

    def cpu_per_request(before: dict, after: dict, requests: int) -> dict:
        return {name: per_request_ms(before[name], after[name], requests) for name in meters}

    try:
        per_client = max(1, len(ticket_ids) // args.reviewers)

        def healthz(i):
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
            latencies = []
            for _ in range(per_client):
                t0 = time.perf_counter()
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                response.read()
                latencies.append(time.perf_counter() - t0)
                assert response.status == 200, response.status
            return latencies

        def baseline(label: str) -> tuple[dict, dict]:
            before = cpu_now()
            results, elapsed = run_clients(args.reviewers, healthz)
            figures = summary(label, per_client * args.reviewers, elapsed, [x for r in results for x in r])
            return figures, cpu_per_request(before, cpu_now(), per_client * args.reviewers)

        # Untimed warm-up: every web worker imports its URLconf and API modules on its first request
        # (about 0.5 s of CPU each), and the sealer starts up; neither is a request's cost, and both
        # used to fall on the first baseline phase, halving its rate.
        run_clients(args.reviewers, healthz)
        settle(meters["sealer"])
        base_before, base_cpu = baseline("baseline GET /healthz")

        def claim_until_empty(i):
            from django.db import connection

            user_id, token = reviewers[i]
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            claimed, latencies = [], []
            while True:
                t0 = time.perf_counter()
                conn.request("POST", "/api/v1/escalations/claim-next", body="{}", headers=headers)
                response = conn.getresponse()
                body = response.read()
                latencies.append(time.perf_counter() - t0)
                if response.status == 204:
                    break
                if response.status != 200:
                    raise RuntimeError(f"claim-next answered {response.status}: {body[:300]!r}")
                claimed.append(json.loads(body)["id"])
            # Each reviewer checks its own tally against the database over its own connection.
            from escalations.models import EscalationTicket

            held = set(EscalationTicket.objects.filter(claimed_by_id=user_id, status="claimed",
                                                       pk__in=ticket_ids).values_list("pk", flat=True))
            connection.close()
            return claimed, latencies, held

        before = cpu_now()
        results, elapsed = run_clients(args.reviewers, claim_until_empty)
        claims_cpu = cpu_per_request(before, cpu_now(), len(ticket_ids))
        claimed = [pk for got, _, _ in results for pk in got]
        latencies = [x for _, lat, _ in results for x in lat]
        claims = summary("POST claim-next (claims)", len(claimed), elapsed, latencies)
        base_after, _ = baseline("baseline again, after")
        base = {key: (base_before[key] + base_after[key]) / 2 for key in base_before}

        from escalations.models import EscalationTicket

        counts = Counter(claimed)
        twice = [pk for pk, n in counts.items() if n > 1]
        lost = set(ticket_ids) - set(counts)
        mismatched = sum(1 for got, _, held in results if set(got) != held)
        still_open = EscalationTicket.objects.filter(pk__in=ticket_ids, status="open").count()
        print(f"tickets {len(ticket_ids)}: claimed {len(counts)}, claimed twice {len(twice)}, lost {len(lost)}, "
              f"still open {still_open}, reviewers whose tally differs from the database {mismatched}")
        per_reviewer = sorted(len(got) for got, _, _ in results)
        print(f"claims per reviewer: min {per_reviewer[0]}, median {per_reviewer[len(per_reviewer) // 2]}, "
              f"max {per_reviewer[-1]}")
        ratio = claims["rate"] / base["rate"]
        print(f"claims/s over healthz/s (the mean of before and after): {ratio:.2f} "
              f"(p50 {claims['p50'] / base['p50']:.1f}x the baseline's)   target >= 0.3")
        print("CPU ms a request, by tier:  " + "   ".join(
            f"{name}: healthz {base_cpu[name]}, claim {claims_cpu[name]}" for name in meters))
        audit_figures = audit_after(ticket_ids, wait_seconds=0 if worker is None else 60)
        print(f"audit: {audit_figures['audit_entries']} claim entries, "
              f"{audit_figures['unsealed_when_done']} unsealed {audit_figures['seal_lag_s']} s after the last claim, "
              f"chain {'intact' if audit_figures['audit_intact'] else 'BROKEN: ' + str(audit_figures['audit_problem'])}")
        ok = (not twice and not lost and not still_open and not mismatched and len(counts) == len(ticket_ids)
              and audit_figures["audit_entries"] == len(ticket_ids) and audit_figures["audit_intact"])
        print("OK: every ticket claimed exactly once, every claim audited in an intact chain" if ok else "FAILED")
        if args.json:
            rounded = {k: round(v, 2) for k, v in base.items()}
            emit_json(
                "claims", ratio, tickets=len(ticket_ids), reviewers=args.reviewers, web_workers=args.web_workers,
                seal_worker=worker is not None,
                baseline={"name": "GET /healthz (mean of before and after)", **rounded,
                          "rate_before": round(base_before["rate"], 1), "rate_after": round(base_after["rate"], 1)},
                claims={k: round(v, 2) for k, v in claims.items()},
                cpu_ms_per_request={"healthz": base_cpu, "claim": claims_cpu},
                claimed_twice=len(twice), lost=len(lost), still_open=still_open,
                **{k: v for k, v in audit_figures.items() if k != "audit_problem"}, ok=ok,
            )
        if not ok:
            raise SystemExit(1)
    finally:
        stop(worker)
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
