"""The fold: adds unfolded events to the rollup tables, exactly once, in set-based SQL for SQLite and PostgreSQL."""
from __future__ import annotations

import json
import time

from django.db import connection, transaction
from django.utils import timezone

from .models import DiscrepantPair, Event, LatencyHour, PairHour, RolloutFold, StageHour, UnfoldedEvent
from .statistics import LATENCY_BUCKETS_MS

BATCH_SIZE = 5_000
# Any constant shared by every fold; pg_try_advisory_xact_lock keys on it.
_FOLD_LOCK = 0x7E1E_F01D

_EVENT = Event._meta.db_table


_BATCH_COLUMNS = "id, agent_id, request_key, kind, rollout_id, stage, occurred_at, segment, label, outcome, latency_ms"


def _latency_case(column: str) -> str:
    # Same buckets as statistics.latency_bucket: bucket i holds (bound[i-1], bound[i]].
    whens = " ".join(
        f"WHEN {column} <= {bound!r} THEN {index}" for index, bound in enumerate(LATENCY_BUCKETS_MS[:-1])
    )
    return f"CASE {whens} ELSE {len(LATENCY_BUCKETS_MS) - 1} END"


def _completed(*, batch: str, unfolded: str, not_in_batch: str, lateral: bool) -> str:
    """Pairs completed by this batch, one row each (the agent event's rollout, stage, time and segment).

    A pair completes when its second half is folded: count it when folding an agent event whose
    human partner is folded (before or in this batch: no longer queued), or a human event whose
    agent partner was folded in an earlier batch. Folds are serialized, so each pair counts once;
    the partner lookup does not depend on the queue, so a partner committed late is still found
    by the fold of the other half (its commit precedes that fold).
    """
    columns = ("a.rollout_id AS rollout_id, a.stage AS stage, a.occurred_at AS occurred_at, a.agent_id AS agent_id, "
               "a.request_key AS request_key, CASE WHEN a.segment <> '' THEN a.segment ELSE h.segment END AS segment, "
               "a.label AS agent_label, h.label AS human_label")
    partner = "p.agent_id = {x}.agent_id AND p.request_key = {x}.request_key AND p.kind = '{kind}'"
    if lateral:
        # PostgreSQL: one index lookup of the partner per batch event. LATERAL … OFFSET 0 keeps
        # the planner from turning it into a hash join over the whole event table when its
        # statistics of the queue are stale (they always are, mid-fold).
        return f"""
            SELECT {columns} FROM {batch} a CROSS JOIN LATERAL (
                SELECT p.label, p.segment FROM {_EVENT} p
                WHERE {partner.format(x="a", kind="human")} AND {unfolded.format(id="p.id")} OFFSET 0) h
            WHERE a.kind = 'agent' AND a.rollout_id IS NOT NULL
            UNION ALL
            SELECT {columns} FROM {batch} h CROSS JOIN LATERAL (
                SELECT p.rollout_id, p.stage, p.occurred_at, p.agent_id, p.request_key, p.segment, p.label FROM {_EVENT} p
                WHERE {partner.format(x="h", kind="agent")} AND p.rollout_id IS NOT NULL
                  AND {unfolded.format(id="p.id")} AND {not_in_batch.format(id="p.id")} OFFSET 0) a
            WHERE h.kind = 'human'
        """
    return f"""
        SELECT {columns} FROM {batch} a JOIN {_EVENT} p ON {partner.format(x="a", kind="human")}
        JOIN {_EVENT} h ON h.id = p.id
        WHERE a.kind = 'agent' AND a.rollout_id IS NOT NULL AND {unfolded.format(id="p.id")}
        UNION ALL
        SELECT {columns} FROM {batch} h JOIN {_EVENT} p ON {partner.format(x="h", kind="agent")}
        JOIN {_EVENT} a ON a.id = p.id
        WHERE h.kind = 'human' AND a.rollout_id IS NOT NULL AND {unfolded.format(id="p.id")}
          AND {not_in_batch.format(id="p.id")}
    """


def _upserts(*, batch: str, completed: str, hour, least: str, greatest: str) -> list[tuple[str, str]]:
    """(name, INSERT … SELECT … ON CONFLICT) of each rollup, reading batch rows `e` and completed pairs."""
    stage_hour = StageHour._meta.db_table
    latency_hour = LatencyHour._meta.db_table
    pair_hour = PairHour._meta.db_table
    discrepant = DiscrepantPair._meta.db_table
    rollout_fold = RolloutFold._meta.db_table
    return [
        ("counts", f"""
        INSERT INTO {stage_hour} (rollout_id, stage, hour, agent_events, agent_errors, agent_escalations,
                                  human_events, human_errors, first_event_at, last_event_at, updated_at)
        SELECT e.rollout_id, e.stage, {hour("e.occurred_at")},
               SUM(CASE WHEN e.kind = 'agent' THEN 1 ELSE 0 END),
               SUM(CASE WHEN e.kind = 'agent' AND e.outcome IN ('error', 'timeout') THEN 1 ELSE 0 END),
               SUM(CASE WHEN e.kind = 'agent' AND e.outcome = 'escalated' THEN 1 ELSE 0 END),
               SUM(CASE WHEN e.kind = 'human' THEN 1 ELSE 0 END),
               SUM(CASE WHEN e.kind = 'human' AND e.outcome IN ('error', 'timeout') THEN 1 ELSE 0 END),
               MIN(e.occurred_at), MAX(e.occurred_at), {{now}}
        FROM {batch} e WHERE e.rollout_id IS NOT NULL
        GROUP BY 1, 2, 3
        ON CONFLICT (rollout_id, stage, hour) DO UPDATE SET
            agent_events = {stage_hour}.agent_events + excluded.agent_events,
            agent_errors = {stage_hour}.agent_errors + excluded.agent_errors,
            agent_escalations = {stage_hour}.agent_escalations + excluded.agent_escalations,
            human_events = {stage_hour}.human_events + excluded.human_events,
            human_errors = {stage_hour}.human_errors + excluded.human_errors,
            first_event_at = {least}({stage_hour}.first_event_at, excluded.first_event_at),
            last_event_at = {greatest}({stage_hour}.last_event_at, excluded.last_event_at),
            updated_at = excluded.updated_at"""),
        ("latency", f"""
        INSERT INTO {latency_hour} (rollout_id, stage, hour, bucket, count)
        SELECT e.rollout_id, e.stage, {hour("e.occurred_at")}, {_latency_case("e.latency_ms")}, COUNT(*)
        FROM {batch} e WHERE e.rollout_id IS NOT NULL AND e.kind = 'agent' AND e.latency_ms IS NOT NULL
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (rollout_id, stage, hour, bucket) DO UPDATE SET count = {latency_hour}.count + excluded.count"""),
        ("pairs", f"""
        INSERT INTO {pair_hour} (rollout_id, stage, hour, segment, agent_label, human_label, pairs)
        SELECT c.rollout_id, c.stage, {hour("c.occurred_at")}, c.segment, c.agent_label, c.human_label, COUNT(*)
        FROM {completed} c WHERE c.rollout_id IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (rollout_id, stage, hour, segment, agent_label, human_label)
        DO UPDATE SET pairs = {pair_hour}.pairs + excluded.pairs"""),
        ("discrepant", f"""
        INSERT INTO {discrepant} (rollout_id, stage, agent_id, request_key, segment, agent_label, human_label, occurred_at)
        SELECT c.rollout_id, c.stage, c.agent_id, c.request_key, c.segment, c.agent_label, c.human_label, c.occurred_at
        FROM {completed} c WHERE c.agent_label <> c.human_label
        ON CONFLICT (agent_id, request_key) DO NOTHING"""),
        ("computed_at", f"""
        INSERT INTO {rollout_fold} (rollout_id, computed_at)
        SELECT DISTINCT e.rollout_id, {{now}} FROM {batch} e WHERE e.rollout_id IS NOT NULL
        ON CONFLICT (rollout_id) DO UPDATE SET computed_at = excluded.computed_at"""),
    ]


def _fold_sql(ids: list[int], now) -> list[tuple[str, list]]:
    """The statements that add batch `ids` (already taken off the queue) to the rollups, with their parameters."""
    queue = UnfoldedEvent._meta.db_table
    unfolded = f"NOT EXISTS (SELECT 1 FROM {queue} q WHERE q.event_id = {{id}})"
    if connection.vendor == "postgresql":
        # One statement: the batch is read once, the completed pairs computed once, and every
        # rollup written by a data-modifying CTE (all run to completion, in this transaction).
        upserts = _upserts(batch="batch", completed="completed", hour=lambda col: f"date_trunc('hour', {col})",
                           least="LEAST", greatest="GREATEST")
        completed = _completed(batch="batch", unfolded=unfolded, not_in_batch="{id} <> ALL(%(ids)s::bigint[])",
                               lateral=True)
        ctes = ",\n".join(f"{name} AS ({sql.format(now='%(now)s')})" for name, sql in upserts[:-1])
        sql = (
            f"WITH batch AS MATERIALIZED (SELECT {_BATCH_COLUMNS} FROM {_EVENT} WHERE id = ANY(%(ids)s::bigint[])),\n"
            f"completed AS MATERIALIZED ({completed}),\n{ctes}\n{upserts[-1][1].format(now='%(now)s')}"
        )
        return [(sql, {"ids": ids, "now": now})]
    # SQLite: no data-modifying CTEs, so one statement per rollup; Django stores date-times as
    # 'YYYY-MM-DD HH:MM:SS[.ffffff]' (UTC), so the hour is a prefix.
    batch = f"(SELECT {_BATCH_COLUMNS} FROM {_EVENT} WHERE id IN (SELECT value FROM json_each(%s)))"
    completed = "(" + _completed(batch=batch, unfolded=unfolded, not_in_batch="{id} NOT IN (SELECT value FROM json_each(%s))",
                                 lateral=False) + ")"
    upserts = _upserts(batch=batch, completed=completed, hour=lambda col: f"substr({col}, 1, 13) || ':00:00'",
                       least="MIN", greatest="MAX")
    batch_json = json.dumps(ids)
    statements = []
    for name, sql in upserts:
        sql = sql.format(now="%s")
        params = {
            "counts": [now, batch_json], "latency": [batch_json], "pairs": [batch_json] * 3,
            "discrepant": [batch_json] * 3, "computed_at": [now, batch_json],
        }[name]
        statements.append((sql, params))
    return statements


def _fold_batch(batch_size: int) -> int:
    queue = UnfoldedEvent._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One fold at a time: the pair rule above relies on it. Another worker finds the
            # lock taken and leaves; the running fold loops until nothing is left.
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_FOLD_LOCK])
            if not cursor.fetchone()[0]:
                return 0
        # On SQLite every write transaction is serialized (BEGIN IMMEDIATE), which does the same.
        # Taking the batch off the queue and adding it to the rollups commit together or not at
        # all: a worker killed in between leaves the queue as it was.
        cursor.execute(
            f"DELETE FROM {queue} WHERE event_id IN "
            f"(SELECT event_id FROM {queue} ORDER BY event_id LIMIT %s) RETURNING event_id",
            [batch_size],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        if not ids:
            return 0
        for sql, params in _fold_sql(ids, connection.ops.adapt_datetimefield_value(timezone.now())):
            cursor.execute(sql, params)
    return len(ids)


def events_fold(*, batch_size: int = BATCH_SIZE, max_seconds: float = 45.0) -> int:
    """Fold unfolded events in transactions of `batch_size` until none are left or time is up; returns how many."""
    deadline = time.monotonic() + max_seconds
    folded = 0
    while True:
        count = _fold_batch(batch_size)
        folded += count
        if count < batch_size or time.monotonic() >= deadline:
            return folded
