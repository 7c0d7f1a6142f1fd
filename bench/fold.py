"""Benchmark: the incremental fold of N events (default 1,000,000) against hand-written INSERT … SELECT … GROUP BY.

Run: .venv/bin/python bench/fold.py [--events N] [--arrival together|humans-last|humans-after-fold] [--json]
(PostgreSQL; DATABASE_URL, default postgres://postgres@127.0.0.1:5432/rolloutops_bench, created and
migrated if missing). --arrival: each request's two decisions are ingested one after the other
(together, the default); every human one is queued after every agent one, so no pair completes
within a batch and every event costs an index lookup of its partner (humans-last, the worst case);
or the agent decisions are folded before the human ones arrive (humans-after-fold: the fold time is
both folds'). The baseline is the same query over the same rows, run before and after the fold (the mean).
After the fold, its rollups are compared with the baseline's tables, row for row.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from itertools import chain
from datetime import datetime, timedelta, timezone
from pathlib import Path

from common import emit_json

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/rolloutops_bench"
SLUG = "bench-telemetry-fold"


def setup_django() -> None:
    """Point Django at the benchmark database (created and migrated if needed); no broker, plain HTTP."""
    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("SECRET_KEY", "bench")
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")  # fold tasks enqueued by ingestion go nowhere
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rolloutops.settings")
    sys.path.insert(0, str(ROOT))
    import dj_database_url
    import psycopg

    db = dj_database_url.parse(os.environ["DATABASE_URL"])
    if "postgresql" not in db["ENGINE"]:
        sys.exit("the benchmarks need PostgreSQL: set DATABASE_URL=postgres://…")
    admin = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                            password=db["PASSWORD"] or None, dbname="postgres", autocommit=True)
    if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
        admin.execute(f'CREATE DATABASE "{db["NAME"]}"')
    admin.close()
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def bench_rollout(slug: str, start: datetime):
    """A fresh agent, version and shadow rollout (the previous run's are deleted)."""
    from agents.models import Agent, AgentVersion
    from rollouts.models import Rollout, RolloutStage, StageTransition
    from telemetry.periods import traffic_period_record

    from django.db import connection

    old = Agent.objects.filter(slug=slug).first()
    if old:
        with connection.cursor() as cursor:  # raw deletes: the ORM's cascade would load every event
            for table in ("telemetry_stagehour", "telemetry_latencyhour", "telemetry_pairhour", "telemetry_paircell",
                          "telemetry_agreementhour", "telemetry_discrepantpair", "telemetry_rolloutfold",
                          "telemetry_unfoldedevent"):
                cursor.execute(f"DELETE FROM {table} WHERE rollout_id IN (SELECT id FROM rollouts_rollout WHERE agent_id = %s)",
                               [old.pk])
            cursor.execute("DELETE FROM telemetry_event WHERE agent_id = %s", [old.pk])
            cursor.execute("SELECT to_regclass('telemetry_eventkey') IS NOT NULL")  # telemetry/partitions.py
            if cursor.fetchone()[0]:
                cursor.execute("DELETE FROM telemetry_eventkey WHERE agent_id = %s", [old.pk])
        Rollout.objects.filter(agent=old).delete()
        old.delete()
    agent = Agent.objects.create(slug=slug, name=slug, owner_team="bench")
    version = AgentVersion.objects.create(agent=agent, version="1.0.0")
    rollout = Rollout.objects.create(agent=agent, version=version, stage_index=1, stage_name="shadow", mode="shadow",
                                     created_at=start, stage_entered_at=start)
    RolloutStage.objects.create(rollout=rollout, position=0, name="staging", mode="off")
    RolloutStage.objects.create(rollout=rollout, position=1, name="shadow", mode="shadow", agreement_bar=0.9)
    StageTransition.objects.create(rollout=rollout, to_stage="staging", to_state="active", action="start", at=start)
    StageTransition.objects.create(rollout=rollout, from_stage="staging", to_stage="shadow", to_state="active",
                                   action="promote", at=start)
    # The routing period ingestion attributes events by (docs/architecture.md, "Events"): in
    # shadow, people act (the incumbent) and the candidate decides beside them.
    traffic_period_record(agent_id=agent.pk, at=start - timedelta(days=1), rollout_id=rollout.pk, stage="shadow",
                          mode="shadow", active=True, salt=rollout.salt, candidate_version_id=version.pk)
    return rollout


COLUMNS = ("agent_id", "version_id", "rollout_id", "stage", "arm", "request_key", "kind", "label", "segment", "confidence",
           "latency_ms", "outcome", "input_hash", "has_trace", "occurred_at", "received_at")


def event_rows(rollout, n: int, start: datetime, seed: int = 7):
    """n events: n/2 requests, each with an agent and a human decision, over ~two weeks."""
    rng = random.Random(seed)
    labels = ["approve", "deny", "refer", "fraud"]
    segments = [f"seg-{i}" for i in range(8)]
    now = datetime.now(timezone.utc)
    for i in range(n // 2):
        at = start + timedelta(seconds=i * 1_209_600 / max(1, n // 2))
        human = rng.choice(labels)
        agent = human if rng.random() < 0.92 else rng.choice(labels)
        outcome = "ok" if rng.random() < 0.97 else rng.choice(["error", "timeout", "escalated"])
        key = f"req-{i}"
        segment = rng.choice(segments)
        yield (rollout.agent_id, rollout.version_id, rollout.pk, "shadow", "candidate", key, "agent", agent, segment,
               rng.random(), rng.lognormvariate(6, 0.6), outcome, "h", False, at, now)
        yield (rollout.agent_id, None, rollout.pk, "shadow", "control", key, "human", human, "", None, None, "ok",
               "h", False, at + timedelta(minutes=rng.randint(1, 600)), now)


def kind_rows(rollout, n: int, start: datetime, kind: str):
    """The rows of event_rows of one kind."""
    return (row for row in event_rows(rollout, n, start) if row[6] == kind)


def copy_events(rows, *, queue: bool = True) -> None:
    """COPY rows into the event table and, as ingestion does, into the fold queue."""
    from django.db import connection

    from telemetry.models import UnfoldedEvent

    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM telemetry_event")
        last = cursor.fetchone()[0]
        with cursor.cursor.copy(f"COPY telemetry_event ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        if queue:
            queued = ", ".join(UnfoldedEvent.FOLD_COLUMNS)
            cursor.execute(f"INSERT INTO telemetry_unfoldedevent (event_id, rollout_id, {queued}) "
                           f"SELECT id, rollout_id, {queued} FROM telemetry_event WHERE id > %s", [last])
        cursor.execute("SELECT to_regclass('telemetry_eventkey') IS NOT NULL")
        if cursor.fetchone()[0]:  # PostgreSQL: the idempotency keys, as ingestion writes them (telemetry/partitions.py)
            cursor.execute("INSERT INTO telemetry_eventkey (agent_id, version_id, request_key, kind, occurred_at, "
                           "event_id) SELECT agent_id, version_id, request_key, kind, occurred_at, id "
                           "FROM telemetry_event WHERE id > %s", [last])


BASELINE = """
CREATE TEMP TABLE b_counts AS
SELECT rollout_id, stage, date_trunc('hour', occurred_at) AS hour, arm, COUNT(*) AS decisions,
       COUNT(*) FILTER (WHERE outcome IN ('error', 'timeout')) AS errors,
       COUNT(*) FILTER (WHERE outcome = 'escalated') AS escalations, COUNT(latency_ms) AS timed,
       COUNT(*) FILTER (WHERE slow) AS slow, MIN(occurred_at) first_at, MAX(occurred_at) last_at
FROM telemetry_event WHERE rollout_id = %(r)s AND arm <> 'other' GROUP BY 1, 2, 3, 4;
CREATE TEMP TABLE b_latency AS
SELECT rollout_id, stage, date_trunc('hour', occurred_at) AS hour, arm,
       width_bucket(latency_ms, %(bounds)s::float8[]) AS bucket, COUNT(*) count
FROM telemetry_event WHERE rollout_id = %(r)s AND arm <> 'other' AND latency_ms IS NOT NULL GROUP BY 1, 2, 3, 4, 5;
CREATE TEMP TABLE b_completed AS
SELECT a.rollout_id, a.stage, a.occurred_at, a.agent_id, a.request_key,
       CASE WHEN h.kind = 'human' THEN 'human' ELSE 'incumbent' END AS reference,
       CASE WHEN a.segment <> '' THEN a.segment ELSE h.segment END AS segment, a.label AS agent_label,
       h.label AS reference_label
FROM telemetry_event a JOIN telemetry_event h
  ON h.agent_id = a.agent_id AND h.request_key = a.request_key
 AND (h.kind = 'human' OR (h.kind = 'agent' AND h.arm = 'control'))
WHERE a.rollout_id = %(r)s AND a.kind = 'agent' AND a.arm = 'candidate';
CREATE TEMP TABLE b_pairs AS
SELECT rollout_id, stage, date_trunc('hour', occurred_at) AS hour, reference, segment, agent_label, reference_label,
       COUNT(*) pairs
FROM b_completed GROUP BY 1, 2, 3, 4, 5, 6, 7;
CREATE TEMP TABLE b_discrepant AS
SELECT * FROM b_completed WHERE agent_label <> reference_label;
CREATE TEMP TABLE b_cells AS
SELECT rollout_id, stage, reference, segment, agent_label, reference_label, SUM(pairs) AS pairs
FROM b_pairs GROUP BY 1, 2, 3, 4, 5, 6;
CREATE TEMP TABLE b_agreement AS
SELECT rollout_id, stage, hour, reference, SUM(pairs) AS pairs,
       SUM(CASE WHEN agent_label = reference_label THEN pairs ELSE 0 END) AS agreements
FROM b_pairs GROUP BY 1, 2, 3, 4;
"""

# Each pair: (baseline table's rows, the rollup's rows); both directions of EXCEPT must be empty.
SAME = [
    ("SELECT rollout_id, stage, hour, arm, decisions, errors, escalations, timed, slow, first_at, last_at "
     "FROM b_counts",
     "SELECT rollout_id, stage, hour, arm, decisions, errors, escalations, timed, slow, first_event_at, "
     "last_event_at FROM telemetry_stagehour WHERE rollout_id = %(r)s"),
    ("SELECT rollout_id, stage, hour, arm, bucket, count FROM b_latency",
     "SELECT rollout_id, stage, hour, arm, bucket, count FROM telemetry_latencyhour WHERE rollout_id = %(r)s"),
    ("SELECT rollout_id, stage, hour, reference, segment, agent_label, reference_label, pairs FROM b_pairs",
     "SELECT rollout_id, stage, hour, reference, segment, agent_label, reference_label, pairs FROM telemetry_pairhour "
     "WHERE rollout_id = %(r)s"),
    ("SELECT rollout_id, stage, agent_id, request_key, reference, segment, agent_label, reference_label, occurred_at "
     "FROM b_discrepant",
     "SELECT rollout_id, stage, agent_id, request_key, reference, segment, agent_label, reference_label, occurred_at "
     "FROM telemetry_discrepantpair WHERE rollout_id = %(r)s"),
    ("SELECT rollout_id, stage, reference, segment, agent_label, reference_label, pairs FROM b_cells",
     "SELECT rollout_id, stage, reference, segment, agent_label, reference_label, pairs FROM telemetry_paircell "
     "WHERE rollout_id = %(r)s"),
    ("SELECT rollout_id, stage, hour, reference, pairs, agreements FROM b_agreement",
     "SELECT rollout_id, stage, hour, reference, pairs, agreements FROM telemetry_agreementhour WHERE rollout_id = %(r)s"),
]


def differences(cursor, rollout_id: int) -> int:
    """Rows in one of the baseline's tables and the rollups but not the other."""
    total = 0
    for baseline, rollup in SAME:
        for first, second in ((baseline, rollup), (rollup, baseline)):
            cursor.execute(f"SELECT COUNT(*) FROM ({first} EXCEPT ALL {second}) d", {"r": rollout_id})
            total += cursor.fetchone()[0]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to fold (default 1,000,000)")
    parser.add_argument("--arrival", choices=["together", "humans-last", "humans-after-fold"], default="together",
                        help="when the human decisions arrive (default: right after their agent's)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    setup_django()
    from django.db import connection, transaction

    from telemetry.fold import BATCH_SIZE, events_fold
    from telemetry.retention import retention_apply
    from telemetry.models import PairHour, StageHour
    from telemetry.selectors import stage_metrics
    from telemetry.statistics import LATENCY_BUCKETS_MS

    # Two weeks inside the retention (EVENT_RETENTION_DAYS): one or two monthly partitions on PostgreSQL.
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(days=16)
    n = args.events - args.events % 2
    events_fold(max_seconds=600)  # whatever other runs left queued is not part of this measurement
    retention_apply(now=datetime.now(timezone.utc))  # as the daily retention leaves the table (and its partitions)
    with transaction.atomic():
        rollout = bench_rollout(SLUG, start)
    with connection.cursor() as cursor:
        # The previous run's rows were just deleted: clean up after them as autovacuum would
        # in time, so neither side pays for them. This run's rows stay as ingestion leaves them.
        cursor.execute("VACUUM telemetry_event, telemetry_unfoldedevent")
        cursor.execute("SELECT to_regclass('telemetry_eventkey') IS NOT NULL")
        if cursor.fetchone()[0]:
            cursor.execute("VACUUM telemetry_eventkey")
    if args.arrival == "together":
        deliveries = [event_rows(rollout, n, start)]
    elif args.arrival == "humans-last":
        deliveries = [chain(kind_rows(rollout, n, start, "agent"), kind_rows(rollout, n, start, "human"))]
    else:
        deliveries = [kind_rows(rollout, n, start, "agent"), kind_rows(rollout, n, start, "human")]
    fold = 0.0
    folded = 0
    per_delivery = []  # each delivery's fold (humans-after-fold: the agents', then the humans')
    for index, rows in enumerate(deliveries):
        t = time.perf_counter()
        with transaction.atomic():
            copy_events(rows)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE telemetry_event; ANALYZE telemetry_unfoldedevent")
            cursor.execute("SELECT to_regclass('telemetry_eventkey') IS NOT NULL")
            if cursor.fetchone()[0]:
                cursor.execute("ANALYZE telemetry_eventkey")
        print(f"seeded {n // len(deliveries):,} events with COPY in {time.perf_counter() - t:.1f} s")
        if index == len(deliveries) - 1:  # every row stored: the baseline's turn
            with connection.cursor() as cursor, transaction.atomic():
                t = time.perf_counter()
                cursor.execute(BASELINE, {"r": rollout.pk, "bounds": [float(b) for b in LATENCY_BUCKETS_MS[:-1]]})
                baseline = time.perf_counter() - t
        t = time.perf_counter()
        folded += events_fold(max_seconds=10 ** 6)
        per_delivery.append(time.perf_counter() - t)
        fold += per_delivery[-1]

    # The baseline once more, after the fold, over the same rows: a shared machine's load moves
    # within a run, so the ratio is against the mean of the two.
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE b_counts, b_latency, b_completed, b_pairs, b_discrepant, b_cells, b_agreement")
        with transaction.atomic():
            t = time.perf_counter()
            cursor.execute(BASELINE, {"r": rollout.pk, "bounds": [float(b) for b in LATENCY_BUCKETS_MS[:-1]]})
            baselines = (baseline, time.perf_counter() - t)
        baseline = sum(baselines) / 2
        differ = differences(cursor, rollout.pk)
        cursor.execute("DROP TABLE b_counts, b_latency, b_completed, b_pairs, b_discrepant, b_cells, b_agreement")

    m = stage_metrics(rollout_id=rollout.pk, stage="shadow")
    assert m.candidate.requests == n // 2 and m.pairs == n // 2, (m.candidate.requests, m.pairs)
    print(f"events N                    {n:,} (folded {folded:,}), arrival: {args.arrival}")
    print(f"rollups vs baseline tables  {'identical' if not differ else f'{differ:,} rows differ'}")
    print(f"rollup rows                 {StageHour.objects.filter(rollout=rollout).count():,} stage-hours, "
          f"{PairHour.objects.filter(rollout=rollout).count():,} pair cells")
    print(f"baseline INSERT…SELECT…GROUP BY, once over all events  {baseline:8.2f} s  {n / baseline:12,.0f} events/s"
          f"  (before / after the fold: {baselines[0]:.2f} / {baselines[1]:.2f} s)")
    print(f"incremental fold ({BATCH_SIZE:,} a transaction, queued, upserted) {fold:8.2f} s  {n / fold:12,.0f} events/s"
          + (f"  (each delivery's: {' / '.join(f'{s:.2f}' for s in per_delivery)} s)" if len(per_delivery) > 1 else ""))
    target = "1.5x" if args.arrival == "together" else "2x"
    print(f"ratio fold / baseline       {fold / baseline:.2f}x   (target <= {target})")
    if args.json:
        emit_json("fold", fold / baseline, events=n, arrival=args.arrival, identical=not differ,
                  baseline={"name": "INSERT … SELECT … GROUP BY", "s": round(baseline, 2),
                            "before_after_s": [round(b, 2) for b in baselines]},
                  fold={"s": round(fold, 2), "events_per_s": round(n / fold), "batch": BATCH_SIZE,
                        "deliveries_s": [round(s, 2) for s in per_delivery]})
    if differ:
        sys.exit("the fold's rollups differ from the baseline's tables")


if __name__ == "__main__":
    main()
