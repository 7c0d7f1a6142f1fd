"""Route calls/s and latency against a bare Django JSON view, both served by the same gunicorn.

Usage: .venv/bin/python bench/route.py [--requests 4000] [--rounds 3] [--clients 8] [--workers 2] [--json]
Needs PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/rolloutops_bench_route);
uses Redis for the shared cache when CACHE_URL is set (default redis://127.0.0.1:6379/3).
The two endpoints take turns, `--rounds` times each (which goes first alternates), so a change in
the shared machine's load falls on both; figures are over all rounds."""
from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import emit_json

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rolloutops_bench_route")
os.environ.setdefault("CACHE_URL", "redis://127.0.0.1:6379/3")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-bench-only-secret-key-0123456789")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings_bench")
os.environ["SECURE_SSL_REDIRECT"] = "false"
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")


def ensure_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def prepare() -> tuple[str, str]:
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command

    from agents.models import Agent, AgentVersion
    from rollouts.models import Rollout
    from rollouts.services import rollout_start
    from rolloutops.tokens import token_issue
    from tests.factories import UserFactory

    call_command("migrate", verbosity=0)
    cache.clear()
    operator = UserFactory(username="bench-operator", roles=["operator"])
    agent, _ = Agent.objects.get_or_create(slug="bench-agent", defaults={"name": "Bench agent", "owner_team": "bench"})
    version, _ = AgentVersion.objects.get_or_create(agent=agent, version="1.0.0")
    rollout = Rollout.objects.filter(agent=agent, state__in=["active", "paused"]).first()
    if rollout is None:
        plan = [{"name": "staging", "mode": "off"}, {"name": "canary", "mode": "live", "traffic_percent": 25}]
        rollout = rollout_start(actor=operator, version=version, plan=plan)
        Rollout.objects.filter(pk=rollout.pk).update(stage_index=1, stage_name="canary", mode="live", traffic_percent=25)
    _, raw = token_issue(user=operator, scopes="route:read", name=f"bench-{time.time_ns()}")
    return agent.slug, raw


def hammer(port: int, path: str, headers: dict, total: int, clients: int) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = total // clients
    errors = [0]

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        for i in range(per_client):
            url = path.replace("{i}", f"{index}-{i}")
            start = time.perf_counter()
            conn.request("GET", url, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "elapsed": time.perf_counter() - start, "errors": errors[0]}


def figures(runs: list[dict]) -> dict:
    latencies = sorted(x for r in runs for x in r["latencies"])
    elapsed = sum(r["elapsed"] for r in runs)
    return {
        "requests": len(latencies), "errors": sum(r["errors"] for r in runs), "per_s": len(latencies) / elapsed,
        "per_s_rounds": [round(len(r["latencies"]) / r["elapsed"]) for r in runs],
        "p50_ms": statistics.median(latencies) * 1000, "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000, help="per endpoint and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    ensure_database()
    slug, token = prepare()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "bench.settings_bench_wsgi:application", "-w", str(args.workers),
         "-b", f"127.0.0.1:{args.port}", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    auth = {"Authorization": f"Bearer {token}"}
    endpoints = {"bare": ("/bench/bare", {}), "route": (f"/api/v1/route?agent={slug}&key=req-{{i}}", auth)}
    runs: dict[str, list[dict]] = {"bare": [], "route": []}
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", args.port, timeout=1).request("GET", "/bench/bare")
                break
            except OSError:
                time.sleep(0.1)
        for path, headers in endpoints.values():  # warm up both paths in every worker
            hammer(args.port, path, headers, 400, args.clients)
        for n in range(args.rounds):
            for name in (("bare", "route") if n % 2 == 0 else ("route", "bare")):
                runs[name].append(hammer(args.port, *endpoints[name], args.requests, args.clients))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
    bare, routed = figures(runs["bare"]), figures(runs["route"])
    print(f"gunicorn workers={args.workers}, clients={args.clients}, {args.rounds} rounds of {args.requests} requests")
    print(f"{'':22}{'calls/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}   calls/s by round")
    for name, r in (("bare Django JSON view", bare), ("GET /api/v1/route", routed)):
        print(f"{name:22}{r['per_s']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['errors']:>8}   "
              f"{', '.join(map(str, r['per_s_rounds']))}")
    ratio, p99_ratio = routed["per_s"] / bare["per_s"], routed["p99_ms"] / bare["p99_ms"]
    print(f"route / bare throughput ratio: {ratio:.2f}   (target >= 0.8)")
    print(f"route / bare p99 latency ratio: {p99_ratio:.2f}   (target <= 1.2)")
    if args.json:
        emit_json("route", ratio, p99_ratio=round(p99_ratio, 3), workers=args.workers, clients=args.clients,
                  rounds=args.rounds,
                  baseline={"name": "bare Django JSON view", **{k: round(v, 2) if isinstance(v, float) else v
                                                               for k, v in bare.items()}},
                  route={k: round(v, 2) if isinstance(v, float) else v for k, v in routed.items()})
    if bare["errors"] or routed["errors"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
