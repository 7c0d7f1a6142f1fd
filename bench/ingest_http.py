"""Benchmark: POST /api/v1/events through gunicorn, the web processes' start-up heap frozen or not.

Run: .venv/bin/python bench/ingest_http.py [--events N] [--rounds 3] [--json]   (PostgreSQL;
DATABASE_URL as in bench/fold.py). `gunicorn rolloutops.wsgi -w 2`, as deployed, serves 2 client
threads sending pre-encoded batches of 1,000 events over kept connections; rounds alternate
between GC_FREEZE=0 (Python's collector as it comes) and the default (rolloutops/heap.py: the
start-up heap frozen out of the collector's scans), each round a fresh server and fresh agent.
The ratio is the frozen rounds' events a second over the unfrozen ones'.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

from common import ROOT, emit_json, log_file, wait_until_healthy
from fold import bench_rollout, setup_django
from ingest import BATCH, events

CLIENTS = 2


def serve(port: int, freeze: bool) -> subprocess.Popen:
    env = dict(os.environ, GC_FREEZE="1" if freeze else "0", DB_CONN_MAX_AGE="60", ALLOWED_HOSTS="127.0.0.1")
    log = log_file("bench-ingest-http-gunicorn.log", "a")
    server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), "rolloutops.wsgi", "-w", "2",
                               "-b", f"127.0.0.1:{port}"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return wait_until_healthy(server, port, "var/bench-ingest-http-gunicorn.log")


def post_all(port: int, token: str, bodies: list[bytes]) -> float:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    # Untimed: each worker's first calls (connections, prepared statements).
    for _ in range(2 * CLIENTS):
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("POST", "/api/v1/events", b'{"events": []}', headers)
        conn.getresponse().read()
    failures = []

    def client(part: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        for body in part:
            conn.request("POST", "/api/v1/events", body, headers)
            response = conn.getresponse()
            answer = response.read()
            if response.status != 200 or json.loads(answer)["accepted"] != BATCH:
                failures.append(answer[:200])

    threads = [threading.Thread(target=client, args=(bodies[k::CLIENTS],)) for k in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert not failures, failures[:3]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000, help="events per round (default 60,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each setting (default 3)")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    setup_django()
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction

    from rolloutops.tokens import token_issue

    n = args.events - args.events % BATCH
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    rates: dict[bool, list[float]] = {False: [], True: []}
    for index in range(2 * args.rounds):
        freeze = index % 2 == 1
        slug = f"bench-ingest-http-{index}"
        with transaction.atomic():
            bench_rollout(slug, start)  # a fresh agent (a previous run's events deleted)
            user, _ = User.objects.get_or_create(username="bench-runtime")
            user.groups.add(Group.objects.get(name="operator"))
            _, token = token_issue(user=user, scopes="events:write", name=f"bench-http-{index}-{time.time_ns()}")
        connection.close()
        batch = events(slug, n, start)
        bodies = [json.dumps({"events": batch[i:i + BATCH]}).encode() for i in range(0, n, BATCH)]
        del batch
        server = serve(args.port, freeze)
        try:
            elapsed = post_all(args.port, token, bodies)
        finally:
            server.terminate()
            server.wait()
        rates[freeze].append(n / elapsed)
        print(f"round {index // 2 + 1}  GC_FREEZE={'1' if freeze else '0'}  {n / elapsed:10,.0f} events/s", flush=True)

    off, on = (sum(rates[k]) / len(rates[k]) for k in (False, True))
    print(f"heap as it comes (GC_FREEZE=0)   {off:10,.0f} events/s (mean of {args.rounds})")
    print(f"start-up heap frozen (default)   {on:10,.0f} events/s")
    print(f"ratio frozen / as it comes       {on / off:.2f}")
    if args.json:
        emit_json("ingest_http", on / off, events=n, batch=BATCH, clients=CLIENTS, web_workers=2,
                  baseline={"name": "GC_FREEZE=0", "events_per_s": [round(r) for r in rates[False]]},
                  frozen={"events_per_s": [round(r) for r in rates[True]]})


if __name__ == "__main__":
    main()
