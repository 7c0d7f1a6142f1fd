"""Benchmark: p95 of the rollout page (full page and its live htmx panel) at 10,000,000 events.

Run: .venv/bin/python bench/rollout_page.py [--events 10000000] [--requests 50]   (PostgreSQL).
The version's raw events are COPYed into the event table (what the readiness checks read: a window
of the newest 50,000 by index), and the rollups are seeded as the fold would leave them after the
same volume (bench/discrepancy.py's seed). Baseline: the same pages of a rollout with no events,
measured in the same run."""
from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timezone

from discrepancy import p95, seed
from fold import bench_rollout, copy_events, event_rows, setup_django

SLUG_FULL = "bench-rollout-page"
SLUG_EMPTY = "bench-rollout-page-empty"


def timed(client, url: str, requests: int, **headers) -> list[float]:
    out = []
    for _ in range(requests):
        t = time.perf_counter()
        response = client.get(url, headers=headers)
        out.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    setup_django()
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction
    from django.test import Client

    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    t = time.perf_counter()
    with transaction.atomic():
        full = bench_rollout(SLUG_FULL, start)
        empty = bench_rollout(SLUG_EMPTY, start)
        copy_events(event_rows(full, args.events, start), queue=False)
        seed(full, start, events=args.events)
        user, _ = User.objects.get_or_create(username="bench-page-viewer")
        user.groups.add(Group.objects.get(name="operator"))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE telemetry_event")
    print(f"loaded {args.events:,} events and their rollups in {time.perf_counter() - t:.0f} s")

    client = Client()
    client.force_login(user)
    results = {}
    for name, rollout in (("baseline (no events)", empty), (f"{args.events / 1e6:g} M events", full)):
        url = f"/rollouts/{rollout.pk}/"
        timed(client, url, 3)  # warm up
        results[name] = {
            "page": timed(client, url, args.requests),
            "live panel": timed(client, url, args.requests, HX_Request="true"),
            "discrepancy API": timed(client, f"/api/v1/rollouts/{rollout.pk}/discrepancy", args.requests),
        }
    print(f"{'':24}{'what':18}{'p50 ms':>9}{'p95 ms':>9}")
    for name, rows in results.items():
        for what, samples in rows.items():
            print(f"{name:24}{what:18}{statistics.median(samples):>9.1f}{p95(samples):>9.1f}")
    base, loaded = results["baseline (no events)"], results[f"{args.events / 1e6:g} M events"]
    for what in ("page", "live panel", "discrepancy API"):
        print(f"ratio p95 {what:16} {p95(loaded[what]) / p95(base[what]):.1f}x   (target: p95 under 100 ms)")


if __name__ == "__main__":
    main()
