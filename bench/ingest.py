"""Benchmark: POST /api/v1/events in batches of 1,000 against psycopg COPY of the same rows.

Run: .venv/bin/python bench/ingest.py [--events N] [--json]   (PostgreSQL; DATABASE_URL as in bench/fold.py).
The API path is measured in-process with Django's test Client (routing, auth, JSON parsing,
validation, the INSERTs and the fold queue; no socket), bodies pre-encoded outside the timing.
The two alternate batch by batch (an API batch, then a COPY transaction of the same size), so a
busy moment of a shared machine falls on both rather than on one of them.
"""
from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timedelta, timezone

from common import emit_json
from fold import bench_rollout, setup_django

SLUG_API = "bench-telemetry-ingest-api"
SLUG_COPY = "bench-telemetry-ingest-copy"
BATCH = 1_000


def events(slug: str, n: int, start: datetime) -> list[dict]:
    out = []
    for i in range(n // 2):
        at = (start + timedelta(seconds=i)).isoformat()
        out.append({"agent": slug, "request_key": f"req-{i}", "kind": "agent", "label": "approve" if i % 9 else "deny",
                    "segment": f"seg-{i % 8}", "confidence": 0.87, "latency_ms": 420.5, "outcome": "ok",
                    "input_hash": "9f86d081884c7d65", "occurred_at": at,
                    "trace": {"steps": [{"tool": "lookup", "ms": 12}]}})
        out.append({"agent": slug, "request_key": f"req-{i}", "kind": "human", "label": "approve", "segment": "",
                    "outcome": "ok", "occurred_at": at})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="events per method (default 50,000)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    setup_django()
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction
    from django.test import Client

    from rolloutops.heap import freeze_start_up_heap
    from rolloutops.tokens import token_issue
    from telemetry.models import Event
    from telemetry.services import _COLUMNS, _Context, _row

    n = args.events - args.events % 2
    # Inside the accepted window (EVENT_RETENTION_DAYS back from now, docs/decisions.md "Input").
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    with transaction.atomic():
        bench_rollout(SLUG_API, start)  # fresh agents (a previous run's are deleted)
        bench_rollout(SLUG_COPY, start)
        user, _ = User.objects.get_or_create(username="bench-runtime")
        user.groups.add(Group.objects.get(name="operator"))
        _, token = token_issue(user=user, scopes="events:write", name="bench")

    # The same rows for both: the API's JSON bodies, and the tuples COPY writes (built by the
    # ingestion code itself from the COPY agent's events, so the columns match exactly).
    api_events = events(SLUG_API, n, start)
    bodies = [json.dumps({"events": api_events[i:i + BATCH]}).encode() for i in range(0, n, BATCH)]
    copy_events = events(SLUG_COPY, n, start)
    now = datetime.now(timezone.utc)
    context = _Context(copy_events, now)
    rows = [_row(item, context, now) for item in copy_events]

    client = Client()
    headers = {"Authorization": f"Bearer {token}"}
    copy_sql = f"COPY telemetry_event ({', '.join(_COLUMNS)}) FROM STDIN"
    api = copied = 0.0
    accepted = 0
    with connection.cursor() as cursor:
        # Untimed warm-up of both paths: a server answers its first request after importing its
        # URLconf and API modules (about 0.5 s, once per process), which is not a batch's cost.
        response = client.post("/api/v1/events", b'{"events": []}', content_type="application/json", headers=headers)
        assert response.status_code == 200, response.content[:300]
        with transaction.atomic(), cursor.cursor.copy(copy_sql):
            pass
        # The server's heap frozen out of the garbage collector's scans after its warm-up, as
        # rolloutops/wsgi.py freezes every web process's (GC_FREEZE=0 to compare); here that heap
        # also holds this script's prepared events (~200,000 objects no server holds).
        freeze_start_up_heap()
        for index, body in enumerate(bodies):
            t = time.perf_counter()
            response = client.post("/api/v1/events", body, content_type="application/json", headers=headers)
            api += time.perf_counter() - t
            assert response.status_code == 200, response.content[:300]
            accepted += response.json()["accepted"]
            t = time.perf_counter()
            with transaction.atomic():
                with cursor.cursor.copy(copy_sql) as copy:
                    for row in rows[index * BATCH:(index + 1) * BATCH]:
                        copy.write_row(row)
            copied += time.perf_counter() - t
    assert accepted == n, accepted
    assert Event.objects.filter(agent__slug=SLUG_COPY).count() == n

    print(f"events N per method          {n:,} in batches of {BATCH:,}")
    print(f"baseline psycopg COPY         {copied:7.2f} s  {n / copied:10,.0f} events/s")
    print(f"POST /api/v1/events           {api:7.2f} s  {n / api:10,.0f} events/s  "
          f"({api / len(bodies) * 1000:.1f} ms a batch)")
    print(f"ratio API / COPY throughput   {copied / api:.0%}   (target >= 60 %)")
    if args.json:
        emit_json("ingest", copied / api, events=n, batch=BATCH,
                  baseline={"name": "psycopg COPY", "events_per_s": round(n / copied)},
                  api={"events_per_s": round(n / api), "ms_per_batch": round(api / len(bodies) * 1000, 1)})


if __name__ == "__main__":
    main()
