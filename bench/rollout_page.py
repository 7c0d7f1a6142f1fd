"""Benchmark: p95 of the rollout page (full page and its live htmx panel) at 10,000,000 events.

Run: .venv/bin/python bench/rollout_page.py [--events 10000000] [--requests 50] [--reuse] [--json]   (PostgreSQL).
The version's raw events are COPYed into the event table (what the readiness checks read: a window
of the newest events by index), and the rollups are seeded as the fold would leave them after the
same volume (bench/discrepancy.py's seed). Baseline: the same pages of a rollout with no events,
measured in the same run. Each page is measured twice:
- steady state: requests in a row, as viewers and the 5-second polls see the page between folds;
- first view after a fold: before each request the rollout's fold watermark moves (as a fold that
  touched it moves it), so every figure cached under the watermark is computed again.
--reuse keeps the events and rollups a previous run loaded (loading 10 M events takes minutes)."""
from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timezone

from common import emit_json
from discrepancy import p95, seed
from fold import bench_rollout, copy_events, event_rows, setup_django

SLUG_FULL = "bench-rollout-page"
SLUG_EMPTY = "bench-rollout-page-empty"
PAGES = ("page", "live panel", "discrepancy API")


def timed(client, url: str, requests: int, before=None, **headers) -> list[float]:
    out = []
    for _ in range(requests):
        if before:
            before()
        t = time.perf_counter()
        response = client.get(url, headers=headers)
        out.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return out


def load(events: int):
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction

    from rollouts.models import Rollout

    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    t = time.perf_counter()
    with transaction.atomic():
        full = bench_rollout(SLUG_FULL, start)
        empty = bench_rollout(SLUG_EMPTY, start)
        copy_events(event_rows(full, events, start), queue=False)
        seed(full, start, events=events)
        user, _ = User.objects.get_or_create(username="bench-page-viewer")
        user.groups.add(Group.objects.get(name="operator"))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE telemetry_event")
    print(f"loaded {events:,} events and their rollups in {time.perf_counter() - t:.0f} s")
    return Rollout.objects.get(pk=full.pk), Rollout.objects.get(pk=empty.pk), user


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--reuse", action="store_true", help="keep the events a previous run loaded")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    setup_django()
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.utils import timezone as dj_timezone

    from rolloutops.heap import freeze_start_up_heap
    from rollouts.models import Rollout
    from telemetry.models import Event, RolloutFold

    found = {r.agent.slug: r for r in Rollout.objects.filter(agent__slug__in=[SLUG_FULL, SLUG_EMPTY])}
    if args.reuse and len(found) == 2:
        full, empty = found[SLUG_FULL], found[SLUG_EMPTY]
        user = User.objects.get(username="bench-page-viewer")
        events = Event.objects.filter(rollout_id=full.pk).count()
        print(f"reusing {events:,} events loaded before")
        # A partition without statistics (one never analyzed since a migration moved the events into
        # it) plans the readiness window as a bitmap scan of every row of the version: seconds, not ms.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE telemetry_event")
            # The rollups too, as autovacuum leaves them: never analyzed, the latency rollup's sum is
            # planned for one row (a sort of 7,920: 9 ms instead of 1.7 ms).
            cursor.execute("ANALYZE telemetry_stagehour, telemetry_latencyhour, telemetry_pairhour, "
                           "telemetry_paircell, telemetry_agreementhour, telemetry_discrepantpair")
    else:
        events = args.events
        full, empty, user = load(events)
    cache.clear()

    client = Client()
    client.force_login(user)
    # Both rollouts' pages once, then the heap frozen out of the garbage collector's scans, as
    # rolloutops/wsgi.py freezes every web process's after start-up (GC_FREEZE=0 to compare):
    # otherwise a full collection walks ~150,000 objects (~100 ms) inside whichever request it
    # lands on, and a p95 of 30 samples is that request's.
    for rollout in (empty, full):
        timed(client, f"/rollouts/{rollout.pk}/", 1)
    freeze_start_up_heap()
    label = f"{events / 1e6:g} M events"
    results: dict[str, dict[str, list[float]]] = {}
    for name, rollout in (("baseline (no events)", empty), (label, full)):
        url = f"/rollouts/{rollout.pk}/"

        def fold_touched(rollout=rollout):
            RolloutFold.objects.update_or_create(rollout_id=rollout.pk, defaults={"computed_at": dj_timezone.now()})

        urls = {"page": (url, {}), "live panel": (url, {"HX_Request": "true"}),
                "discrepancy API": (f"/api/v1/rollouts/{rollout.pk}/discrepancy", {})}
        timed(client, url, 3)  # warm up
        results[name] = {}
        for what, (path, headers) in urls.items():
            results[name][what] = timed(client, path, args.requests, **headers)
            results[name][f"{what}, first view after a fold"] = timed(client, path, max(10, args.requests // 2),
                                                                       fold_touched, **headers)
    print(f"{'':24}{'what':46}{'p50 ms':>9}{'p95 ms':>9}")
    for name, rows in results.items():
        for what, samples in rows.items():
            print(f"{name:24}{what:46}{statistics.median(samples):>9.1f}{p95(samples):>9.1f}")
    base, loaded = results["baseline (no events)"], results[label]
    figures = {}
    for what in loaded:
        figures[what] = {"baseline_p95_ms": round(p95(base[what]), 1), "p50_ms": round(statistics.median(loaded[what]), 1),
                         "p95_ms": round(p95(loaded[what]), 1), "ratio": round(p95(loaded[what]) / p95(base[what]), 2)}
        target = 100 if "after a fold" in what else 30
        print(f"ratio p95 {what:44} {figures[what]['ratio']:.1f}x   p95 {figures[what]['p95_ms']} ms "
              f"(target: under {target} ms)")
    if args.json:
        worst = max(figures[f"{what}, first view after a fold"]["ratio"] for what in PAGES)
        emit_json("rollout_page", worst, events=events, requests=args.requests, pages=figures)


if __name__ == "__main__":
    main()
