"""The client library against the server it talks to: in-process route() against GET /api/v1/route over
HTTP, and record() with its background sender against the server's own POST /api/v1/events rate.

Usage: .venv/bin/python bench/client.py [--routes 300000] [--http-requests 4000] [--events 50000] [--json]
Needs PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/rolloutops_bench_client) and
uses Redis for the shared cache (CACHE_URL, default redis://127.0.0.1:6379/3). gunicorn -w 2 serves the
app on --port (default 18101). The routing snapshot comes from the server's GET /api/v1/routing when it
answers it; otherwise from a stub on --port + 1 that serves the same rollout as the contract's snapshot.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rolloutops_bench_client")
os.environ.setdefault("CACHE_URL", "redis://127.0.0.1:6379/3")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")  # fold tasks enqueued by ingestion go nowhere
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-bench-only-secret-key-0123456789")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings_bench")
os.environ["SECURE_SSL_REDIRECT"] = "false"
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")

from common import emit_json  # noqa: E402
from route import ensure_database, figures, hammer  # noqa: E402  (bench/route.py: same database and HTTP helpers)

import httpx  # noqa: E402
from rolloutops_client import Client  # noqa: E402
from rolloutops_client.events import encode_batch  # noqa: E402

SLUG = "bench-client-agent"
VERSION = "1.0.0"
TRAFFIC = 25.0


def prepare() -> tuple[str, dict]:
    """An agent whose version is in a live 25 % canary, a runtime token, and the snapshot entry the
    contract gives for it (used by the stub when the server has no /api/v1/routing)."""
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection

    from agents.models import Agent, AgentVersion
    from rollouts.models import Rollout
    from rollouts.services import rollout_start
    from rolloutops.tokens import token_issue
    from tests.factories import UserFactory

    call_command("migrate", verbosity=0)
    cache.clear()
    with connection.cursor() as cursor:  # each run starts from an empty event table
        cursor.execute("TRUNCATE telemetry_event, telemetry_unfoldedevent CASCADE")
        # PostgreSQL keeps the idempotency keys apart from the partitioned events (telemetry/partitions.py).
        cursor.execute("SELECT to_regclass('telemetry_eventkey') IS NOT NULL")
        if cursor.fetchone()[0]:
            cursor.execute("TRUNCATE telemetry_eventkey")
    operator = UserFactory(username="bench-client-operator", roles=["operator"])
    agent, _ = Agent.objects.get_or_create(slug=SLUG, defaults={"name": "Bench client agent", "owner_team": "bench"})
    version, _ = AgentVersion.objects.get_or_create(agent=agent, version=VERSION)
    rollout = Rollout.objects.filter(agent=agent, state__in=["active", "paused"]).first()
    if rollout is None:
        plan = [{"name": "staging", "mode": "off"}, {"name": "canary", "mode": "live", "traffic_percent": TRAFFIC}]
        rollout = rollout_start(actor=operator, version=version, plan=plan)
        Rollout.objects.filter(pk=rollout.pk).update(stage_index=1, stage_name="canary", mode="live",
                                                     traffic_percent=TRAFFIC)
        rollout.refresh_from_db()
    _, raw = token_issue(user=operator, scopes="route:read,events:write", name=f"bench-client-{time.time_ns()}")
    entry = {
        "incumbent": {"handler": "human", "version": None},
        "rollout": {"id": rollout.pk, "state": rollout.state, "stage": rollout.stage_name, "mode": rollout.mode,
                    "traffic_percent": rollout.traffic_percent, "salt": rollout.salt, "candidate": VERSION},
    }
    return raw, entry


class StubSnapshot:
    """GET /api/v1/routing as the routing contract describes it, for a server that does not answer it yet."""

    def __init__(self, port: int, entry: dict):
        body = json.dumps({"generated_at": "stub", "buckets": 10_000, "agents": {SLUG: entry}}).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def bench_route(client: Client, n: int) -> dict:
    """One thread calling route() with distinct keys: first pass (answers not yet memoised), then warm."""
    keys = [f"req-{i}" for i in range(100_000)]
    route = client.route
    clock = time.perf_counter_ns
    cold: list[int] = []
    for key in keys:
        t = clock()
        route(SLUG, key)
        cold.append(clock() - t)
    timed: list[int] = []
    for key in keys:
        t = clock()
        route(SLUG, key)
        timed.append(clock() - t)
    rounds = max(1, n // len(keys))
    start = time.perf_counter()
    for _ in range(rounds):
        for key in keys:
            route(SLUG, key)
    elapsed = time.perf_counter() - start
    cold.sort()
    timed.sort()
    return {
        "calls": rounds * len(keys), "per_s": rounds * len(keys) / elapsed,
        "p50_us": percentile(timed, 0.50) / 1000, "p99_us": percentile(timed, 0.99) / 1000,
        "max_us": timed[-1] / 1000, "cold_p99_us": percentile(cold, 0.99) / 1000,
    }


def check_agreement(client: Client, port: int, token: str, n: int = 500) -> int:
    """Keys on which the in-process answer and the server's differ (handler, rollout, stage, bucket)."""
    mismatches = 0
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}) as http:
        for i in range(n):
            key = f"check-{i}"
            server = http.get("/api/v1/route", params={"agent": SLUG, "key": key}).json()
            mine = client.route(SLUG, key)
            if (mine.handler, mine.rollout, mine.stage, mine.bucket) != (server["handler"], server["rollout"],
                                                                          server["stage"], server["bucket"]):
                mismatches += 1
    return mismatches


def bench_route_while_recording(router: Client, port: int, token: str, *, rate: int, seconds: float,
                                batch: int, prefix: str) -> dict:
    """route() latency in a runtime that also reports: another thread records `rate` events a second
    (in bursts of 50) while the sender posts them, and this thread times route() calls meanwhile."""
    sender = Client(f"http://127.0.0.1:{port}", token, background=False, batch_size=batch, flush_interval_s=0.2,
                    flush_at_exit_s=None, timeout_s=120)
    calls = event_kwargs(prefix, int(rate * seconds))
    done = threading.Event()

    def producer() -> None:
        start = time.perf_counter()
        for i in range(0, len(calls), 50):
            for kwargs in calls[i:i + 50]:
                sender.record(**kwargs)
            pause = start + (i + 50) / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        sender.flush(timeout=600)
        done.set()

    keys = [f"req-{i}" for i in range(100_000)]
    route = router.route
    clock = time.perf_counter_ns
    latencies: list[int] = []
    thread = threading.Thread(target=producer)
    thread.start()
    while not done.is_set():
        for key in keys[len(latencies) % 90_000:][:10_000]:
            t = clock()
            route(SLUG, key)
            latencies.append(clock() - t)
        time.sleep(0)  # lets the producer and the sender in between rounds, as request handling would
    thread.join()
    stats = sender.stats().telemetry
    sender.close(timeout=5)
    latencies.sort()
    return {"events": len(calls), "accepted": stats.accepted, "rate": rate, "calls": len(latencies),
            "p50_us": percentile(latencies, 0.5) / 1000, "p99_us": percentile(latencies, 0.99) / 1000,
            "p999_us": percentile(latencies, 0.999) / 1000, "max_us": latencies[-1] / 1000}


def event_kwargs(prefix: str, n: int) -> list[dict]:
    trace = {"steps": [{"tool": "lookup", "duration_ms": 12}]}
    return [dict(agent=SLUG, request_key=f"{prefix}-{i}", kind="agent", label="approve" if i % 9 else "deny",
                 version=VERSION, latency_ms=420.5, segment=f"seg-{i % 8}", confidence=0.87,
                 input_hash="9f86d081884c7d65", trace=trace) for i in range(n)]


def bench_server_events(port: int, token: str, n: int, batch: int, prefix: str) -> dict:
    """The server's own rate: pre-encoded batches posted back to back on one connection, as the sender does."""
    from datetime import datetime, timezone

    at = datetime.now(timezone.utc).isoformat()
    events = [{**{k: v for k, v in e.items()}, "occurred_at": at} for e in event_kwargs(prefix, n)]
    bodies = [json.dumps({"events": events[i:i + batch]}).encode() for i in range(0, n, batch)]
    accepted = 0
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                      headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}) as http:
        start = time.perf_counter()
        for body in bodies:
            response = http.post("/api/v1/events", content=body)
            response.raise_for_status()
            accepted += response.json()["accepted"]
        elapsed = time.perf_counter() - start
    return {"events": n, "accepted": accepted, "per_s": n / elapsed, "seconds": elapsed}


def bench_record(port: int, token: str, n: int, batch: int, prefix: str) -> dict:
    calls = event_kwargs(prefix, n)
    client = Client(f"http://127.0.0.1:{port}", token, background=False, batch_size=batch, max_queue=n + 1,
                    flush_interval_s=0.2, flush_at_exit_s=None, timeout_s=120)
    record = client.record
    clock = time.perf_counter_ns
    latencies: list[int] = []
    start = time.perf_counter()
    for kwargs in calls:
        t = clock()
        record(**kwargs)
        latencies.append(clock() - t)
    caller = time.perf_counter() - start
    flushed = client.flush(timeout=600)
    delivered = time.perf_counter() - start
    stats = client.stats().telemetry
    client.close(timeout=5)
    latencies.sort()
    # The sender's own CPU per event: turning queued tuples into a JSON body, outside any I/O.
    sample = [(SLUG, f"x-{i}", "agent", "approve", "ok", VERSION, 420.5, "seg-1", 0.87, "9f86d081884c7d65",
               {"steps": [{"tool": "lookup", "duration_ms": 12}]}, time.time()) for i in range(batch)]
    t = time.perf_counter()
    for _ in range(5):
        encode_batch(sample)
    encode_s_per_event = (time.perf_counter() - t) / (5 * batch)
    return {
        "events": n, "flushed": flushed, "accepted": stats.accepted, "dropped": stats.dropped,
        "failed": stats.failed, "rejected": stats.rejected, "batches": stats.batches, "retries": stats.retries,
        "record_per_s": n / caller, "record_p50_us": percentile(latencies, 0.5) / 1000,
        "record_p99_us": percentile(latencies, 0.99) / 1000, "delivered_per_s": n / delivered,
        "sender_encode_per_s": 1 / encode_s_per_event,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=int, default=300_000, help="in-process route() calls (warm)")
    parser.add_argument("--http-requests", type=int, default=4_000, help="GET /api/v1/route requests")
    parser.add_argument("--clients", type=int, default=8, help="keep-alive HTTP clients for GET /route")
    parser.add_argument("--events", type=int, default=50_000, help="events for record() and the baseline")
    parser.add_argument("--batch", type=int, default=1_000, help="events a batch (client and baseline)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=18101)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()

    ensure_database()
    token, entry = prepare()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "bench.settings_bench_wsgi:application", "-w", str(args.workers),
         "-b", f"127.0.0.1:{args.port}", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    stub = None
    try:
        base = f"http://127.0.0.1:{args.port}"
        for _ in range(100):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        auth = {"Authorization": f"Bearer {token}"}
        real = httpx.get(f"{base}/api/v1/routing", headers=auth, timeout=10).status_code == 200
        if real:
            snapshot_url = base
        else:
            stub = StubSnapshot(args.port + 1, entry)
            snapshot_url = stub.url
        router = Client(snapshot_url, token, background=False, flush_at_exit_s=None)
        router.refresh()
        mismatches = check_agreement(router, args.port, token)

        hammer(args.port, f"/api/v1/route?agent={SLUG}&key=warm-{{i}}", auth, 400, args.clients)
        http_route = figures([hammer(args.port, f"/api/v1/route?agent={SLUG}&key=req-{{i}}", auth, args.http_requests,
                                     args.clients)])
        in_process = bench_route(router, args.routes)
        run = str(time.time_ns())
        mixed = bench_route_while_recording(router, args.port, token, rate=2_000, seconds=5, batch=args.batch,
                                            prefix=f"mixed-{run}")
        router.close(timeout=1)

        bench_server_events(args.port, token, min(args.events, 5 * args.batch), args.batch, f"warm-{run}")
        baseline_1 = bench_server_events(args.port, token, args.events, args.batch, f"base1-{run}")
        recorded = bench_record(args.port, token, args.events, args.batch, f"client-{run}")
        baseline_2 = bench_server_events(args.port, token, args.events, args.batch, f"base2-{run}")
    finally:
        if stub is not None:
            stub.close()
        server.send_signal(signal.SIGTERM)
        server.wait(10)

    server_per_s = statistics.mean([baseline_1["per_s"], baseline_2["per_s"]])
    route_ratio = in_process["per_s"] / http_route["per_s"]
    delivered_ratio = recorded["delivered_per_s"] / server_per_s
    source = "GET /api/v1/routing" if real else "stub snapshot (the server has no GET /api/v1/routing yet)"
    print(f"gunicorn workers={args.workers}; snapshot from {source}; "
          f"in-process vs server answers on 500 keys: {mismatches} mismatches")
    print()
    print(f"{'routing':40}{'calls/s':>12}{'p50':>12}{'p99':>12}")
    print(f"{'GET /api/v1/route (HTTP, %d clients)' % args.clients:40}{http_route['per_s']:>12,.0f}"
          f"{http_route['p50_ms'] * 1000:>10,.0f}us{http_route['p99_ms'] * 1000:>10,.0f}us")
    print(f"{'Client.route() in-process, 1 thread':40}{in_process['per_s']:>12,.0f}"
          f"{in_process['p50_us']:>10.2f}us{in_process['p99_us']:>10.2f}us")
    print(f"route() / HTTP route throughput: {route_ratio:,.0f}x (target >= 100x); route() p99 "
          f"{in_process['p99_us']:.2f} us (target <= 50 us), first pass before memoisation p99 "
          f"{in_process['cold_p99_us']:.2f} us, max {in_process['max_us']:.0f} us")
    print(f"route() while another thread records {mixed['rate']:,} events/s and the sender posts them: "
          f"p50 {mixed['p50_us']:.2f} us, p99 {mixed['p99_us']:.2f} us, p99.9 {mixed['p999_us']:.1f} us, "
          f"max {mixed['max_us']:,.0f} us ({mixed['calls']:,} calls)")
    print()
    print(f"{'telemetry (%d events, %d a batch)' % (args.events, args.batch):40}{'events/s':>12}")
    print(f"{'server: POST /events back to back':40}{server_per_s:>12,.0f}"
          f"   ({baseline_1['per_s']:,.0f} before, {baseline_2['per_s']:,.0f} after the client run)")
    print(f"{'client: record() calls (caller thread)':40}{recorded['record_per_s']:>12,.0f}"
          f"   p50 {recorded['record_p50_us']:.2f} us, p99 {recorded['record_p99_us']:.2f} us")
    print(f"{'client: recorded -> stored (end to end)':40}{recorded['delivered_per_s']:>12,.0f}"
          f"   {recorded['batches']} batches, {recorded['accepted']} accepted, {recorded['dropped']} dropped, "
          f"{recorded['failed']} failed")
    print(f"{'client: sender JSON encoding alone':40}{recorded['sender_encode_per_s']:>12,.0f}")
    print(f"end-to-end / server rate: {delivered_ratio:.2f} (1.0 = the client adds nothing); "
          f"record() / server rate: {recorded['record_per_s'] / server_per_s:,.0f}x")
    if args.json:
        emit_json("client", route_ratio, snapshot_source="server" if real else "stub", mismatches=mismatches,
                  http_route=http_route, in_process_route=in_process, route_ratio=route_ratio,
                  route_while_recording=mixed, server_events_per_s=server_per_s,
                  server_events_runs=[baseline_1, baseline_2], record=recorded, delivered_ratio=delivered_ratio)
    if mismatches or recorded["accepted"] != args.events:
        sys.exit(1)


if __name__ == "__main__":
    main()
