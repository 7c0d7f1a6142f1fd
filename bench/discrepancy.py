"""Benchmark: p95 of GET /api/v1/rollouts/{id}/discrepancy over rollups that represent 10,000,000 events.

Run: .venv/bin/python bench/discrepancy.py [--requests N] [--json]   (PostgreSQL; DATABASE_URL as in bench/fold.py).
The rollup tables are seeded directly (5,000,000 pairs over 30 days × 24 hours × 8 segments ×
4 × 4 label cells); the baseline is the same endpoint on a rollout with no pairs (the fixed
cost of routing, auth and the response), measured in the same run.
"""
from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import datetime, timedelta, timezone

from common import emit_json
from fold import bench_rollout, setup_django

SLUG_FULL = "bench-telemetry-discrepancy"
SLUG_EMPTY = "bench-telemetry-discrepancy-empty"
LABELS = ["approve", "deny", "refer", "fraud"]


def seed(rollout, start: datetime, *, days: int = 30, segments: int = 8, events: int = 10_000_000) -> int:
    """PairHour, StageHour, LatencyHour and DiscrepantPair rows as the fold would leave them after
    `events` events of a shadow stage: half the candidate's decisions, half the humans' (each a
    pair's reference)."""
    from django.db import connection

    rng = random.Random(3)
    hours = days * 24
    pairs_per_cell = events // 2 // (hours * segments)
    pair_rows, stage_rows, latency_rows, discrepant_rows = [], [], [], []
    key = 0
    now = datetime.now(timezone.utc)
    for h in range(hours):
        hour = start + timedelta(hours=h)
        for s in range(segments):
            left = pairs_per_cell
            for agent in LABELS:
                for human in LABELS:
                    if agent == human:
                        n = pairs_per_cell * (88 if s else 70) // 100 // len(LABELS)
                    else:
                        n = rng.randint(0, max(1, left // 12))
                    left -= n
                    if n:
                        pair_rows.append((rollout.pk, "shadow", hour, "human", f"seg-{s}", agent, human, n))
                    if agent != human and n and len(discrepant_rows) < 200_000:
                        key += 1
                        discrepant_rows.append((rollout.pk, "shadow", rollout.agent_id, f"req-{key}", "human",
                                                f"seg-{s}", agent, human,
                                                hour + timedelta(minutes=rng.randint(0, 59))))
        per_hour = events // 2 // hours
        for arm, errors, escalations, timed in (("candidate", per_hour // 50, per_hour // 20, per_hour),
                                                ("control", 0, 0, 0)):
            stage_rows.append((rollout.pk, "shadow", hour, arm, per_hour, errors, escalations, timed, per_hour // 100,
                               hour, hour + timedelta(minutes=59), now))
        for bucket in range(5, 16):
            latency_rows.append((rollout.pk, "shadow", hour, "candidate", bucket, per_hour // 11))
    with connection.cursor() as cursor:
        raw = cursor.cursor
        for table, columns, rows in (
            ("telemetry_pairhour", "rollout_id, stage, hour, reference, segment, agent_label, reference_label, pairs",
             pair_rows),
            ("telemetry_stagehour", "rollout_id, stage, hour, arm, decisions, errors, escalations, timed, slow, "
             "first_event_at, last_event_at, updated_at", stage_rows),
            ("telemetry_latencyhour", "rollout_id, stage, hour, arm, bucket, count", latency_rows),
            ("telemetry_discrepantpair", "rollout_id, stage, agent_id, request_key, reference, segment, agent_label, "
             "reference_label, occurred_at", discrepant_rows),
        ):
            with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        # The pair rollup's sums the fold keeps beside it (telemetry/fold.py), as it would have them.
        cursor.execute("INSERT INTO telemetry_paircell (rollout_id, stage, reference, segment, agent_label, reference_label, pairs) "
                       "SELECT rollout_id, stage, reference, segment, agent_label, reference_label, SUM(pairs) "
                       "FROM telemetry_pairhour WHERE rollout_id = %s GROUP BY 1, 2, 3, 4, 5, 6", [rollout.pk])
        cursor.execute("INSERT INTO telemetry_agreementhour (rollout_id, stage, hour, reference, pairs, agreements) "
                       "SELECT rollout_id, stage, hour, reference, SUM(pairs), "
                       "SUM(CASE WHEN agent_label = reference_label THEN pairs ELSE 0 END) "
                       "FROM telemetry_pairhour WHERE rollout_id = %s GROUP BY 1, 2, 3, 4", [rollout.pk])
        cursor.execute("INSERT INTO telemetry_rolloutfold (rollout_id, computed_at) VALUES (%s, now())", [rollout.pk])
        cursor.execute("ANALYZE telemetry_pairhour; ANALYZE telemetry_discrepantpair; ANALYZE telemetry_stagehour; "
                       "ANALYZE telemetry_paircell; ANALYZE telemetry_agreementhour; ANALYZE telemetry_latencyhour")
    return len(pair_rows)


def timed(client, url: str, headers: dict, requests: int) -> list[float]:
    out = []
    for _ in range(requests):
        t = time.perf_counter()
        response = client.get(url, headers=headers)
        out.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, response.content[:300]
    return out


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    setup_django()
    from django.contrib.auth.models import Group, User
    from django.db import transaction
    from django.test import Client

    from rolloutops.tokens import token_issue

    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    with transaction.atomic():
        full = bench_rollout(SLUG_FULL, start)
        empty = bench_rollout(SLUG_EMPTY, start)
        cells = seed(full, start)
        user, _ = User.objects.get_or_create(username="bench-viewer")
        user.groups.add(Group.objects.get(name="reviewer"))
        _, token = token_issue(user=user, scopes="user", name="bench")

    client = Client()
    headers = {"Authorization": f"Bearer {token}"}
    body = client.get(f"/api/v1/rollouts/{full.pk}/discrepancy", headers=headers).json()
    timed(client, f"/api/v1/rollouts/{empty.pk}/discrepancy", headers, 5)  # warm up
    baseline = timed(client, f"/api/v1/rollouts/{empty.pk}/discrepancy", headers, args.requests)
    loaded = timed(client, f"/api/v1/rollouts/{full.pk}/discrepancy", headers, args.requests)
    print(f"represented events           {2 * body['pairs']:,} ({body['pairs']:,} pairs in {cells:,} pair-rollup rows; "
          f"{len(body['hourly'])} hours, {len(body['segments'])} segments, flagged {body['flagged_segments']})")
    print(f"baseline (rollout, no pairs)  p50 {statistics.median(baseline):7.1f} ms   p95 {p95(baseline):7.1f} ms")
    print(f"discrepancy at 10 M events    p50 {statistics.median(loaded):7.1f} ms   p95 {p95(loaded):7.1f} ms")
    print(f"ratio p95 loaded / baseline   {p95(loaded) / p95(baseline):.1f}x   ({args.requests} requests each)")
    if args.json:
        emit_json("discrepancy", p95(loaded) / p95(baseline), requests=args.requests, pairs=body["pairs"],
                  pair_rollup_rows=cells,
                  baseline={"name": "the same call, rollout without pairs", "p50_ms": round(statistics.median(baseline), 2),
                            "p95_ms": round(p95(baseline), 2)},
                  loaded={"p50_ms": round(statistics.median(loaded), 2), "p95_ms": round(p95(loaded), 2)})


if __name__ == "__main__":
    main()
