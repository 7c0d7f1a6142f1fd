"""The fold: adds unfolded events to the rollup tables, exactly once, in set-based SQL for SQLite and PostgreSQL."""
from __future__ import annotations

import json
import time

from django.db import connection, transaction
from django.utils import timezone

from .models import DiscrepantPair, Event, LatencyHour, PairHour, RolloutFold, StageHour
from .statistics import LATENCY_BUCKETS_MS

BATCH_SIZE = 5_000
# Any constant shared by every fold; pg_try_advisory_xact_lock keys on it.
_FOLD_LOCK = 0x7E1E_F01D

_EVENT = Event._meta.db_table


class FoldRaced(RuntimeError):
    """The batch changed under us: another fold marked some of its events. Rolled back, nothing counted."""


def _vendor() -> dict:
    """The few SQL fragments that differ between the two vendors."""
    if connection.vendor == "postgresql":
        return {
            "hour": "date_trunc('hour', {col})",
            "in_batch": "{col} = ANY(%s::bigint[])",
            "not_in_batch": "{col} <> ALL(%s::bigint[])",
            "least": "LEAST",
            "greatest": "GREATEST",
            "batch_param": lambda ids: ids,
        }
    return {
        # Django stores SQLite date-times as 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC.
        "hour": "substr({col}, 1, 13) || ':00:00'",
        "in_batch": "{col} IN (SELECT value FROM json_each(%s))",
        "not_in_batch": "{col} NOT IN (SELECT value FROM json_each(%s))",
        "least": "MIN",
        "greatest": "MAX",
        "batch_param": lambda ids: json.dumps(ids),
    }


def _latency_case(column: str) -> str:
    # Same buckets as statistics.latency_bucket: bucket i holds (bound[i-1], bound[i]].
    whens = " ".join(
        f"WHEN {column} <= {bound!r} THEN {index}" for index, bound in enumerate(LATENCY_BUCKETS_MS[:-1])
    )
    return f"CASE {whens} ELSE {len(LATENCY_BUCKETS_MS) - 1} END"


def _statements(v: dict) -> list[tuple[str, tuple[str, ...]]]:
    """(sql, parameter names) of the fold, run in order after the batch has been marked folded."""
    hour = v["hour"].format(col="occurred_at")
    in_b = v["in_batch"].format(col="id")
    stage_hour = StageHour._meta.db_table
    latency_hour = LatencyHour._meta.db_table
    pair_hour = PairHour._meta.db_table
    discrepant = DiscrepantPair._meta.db_table
    rollout_fold = RolloutFold._meta.db_table
    counts = f"""
        INSERT INTO {stage_hour} (rollout_id, stage, hour, agent_events, agent_errors, agent_escalations,
                                  human_events, human_errors, first_event_at, last_event_at, updated_at)
        SELECT rollout_id, stage, {hour},
               SUM(CASE WHEN kind = 'agent' THEN 1 ELSE 0 END),
               SUM(CASE WHEN kind = 'agent' AND outcome IN ('error', 'timeout') THEN 1 ELSE 0 END),
               SUM(CASE WHEN kind = 'agent' AND outcome = 'escalated' THEN 1 ELSE 0 END),
               SUM(CASE WHEN kind = 'human' THEN 1 ELSE 0 END),
               SUM(CASE WHEN kind = 'human' AND outcome IN ('error', 'timeout') THEN 1 ELSE 0 END),
               MIN(occurred_at), MAX(occurred_at), %s
        FROM {_EVENT} WHERE {in_b} AND rollout_id IS NOT NULL
        GROUP BY rollout_id, stage, {hour}
        ON CONFLICT (rollout_id, stage, hour) DO UPDATE SET
            agent_events = {stage_hour}.agent_events + excluded.agent_events,
            agent_errors = {stage_hour}.agent_errors + excluded.agent_errors,
            agent_escalations = {stage_hour}.agent_escalations + excluded.agent_escalations,
            human_events = {stage_hour}.human_events + excluded.human_events,
            human_errors = {stage_hour}.human_errors + excluded.human_errors,
            first_event_at = {v["least"]}({stage_hour}.first_event_at, excluded.first_event_at),
            last_event_at = {v["greatest"]}({stage_hour}.last_event_at, excluded.last_event_at),
            updated_at = excluded.updated_at
    """
    latency = f"""
        INSERT INTO {latency_hour} (rollout_id, stage, hour, bucket, count)
        SELECT rollout_id, stage, {hour}, {_latency_case("latency_ms")}, COUNT(*)
        FROM {_EVENT} WHERE {in_b} AND rollout_id IS NOT NULL AND kind = 'agent' AND latency_ms IS NOT NULL
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (rollout_id, stage, hour, bucket) DO UPDATE SET count = {latency_hour}.count + excluded.count
    """
    # A pair completes when its second half is folded: count it when folding an agent event
    # whose human partner is folded (before or in this batch), or a human event whose agent
    # partner was folded in an earlier batch. Folds are serialized, so each pair counts once;
    # the partner lookup ignores folded_at, so a partner committed late is still found by the
    # fold of the other half (its commit precedes that fold's snapshot).
    completed = f"""
        SELECT a.rollout_id AS rollout_id, a.stage AS stage, a.occurred_at AS occurred_at, a.agent_id AS agent_id,
               a.request_key AS request_key, CASE WHEN a.segment <> '' THEN a.segment ELSE h.segment END AS segment,
               a.label AS agent_label, h.label AS human_label
        FROM {_EVENT} a JOIN {_EVENT} h
          ON h.agent_id = a.agent_id AND h.request_key = a.request_key AND h.kind = 'human'
        WHERE {v["in_batch"].format(col="a.id")} AND a.kind = 'agent' AND a.rollout_id IS NOT NULL
          AND h.folded_at IS NOT NULL
        UNION ALL
        SELECT a.rollout_id, a.stage, a.occurred_at, a.agent_id, a.request_key,
               CASE WHEN a.segment <> '' THEN a.segment ELSE h.segment END, a.label, h.label
        FROM {_EVENT} h JOIN {_EVENT} a
          ON a.agent_id = h.agent_id AND a.request_key = h.request_key AND a.kind = 'agent'
        WHERE {v["in_batch"].format(col="h.id")} AND h.kind = 'human' AND a.rollout_id IS NOT NULL
          AND a.folded_at IS NOT NULL AND {v["not_in_batch"].format(col="a.id")}
    """
    pair_hour_sql = f"""
        INSERT INTO {pair_hour} (rollout_id, stage, hour, segment, agent_label, human_label, pairs)
        SELECT rollout_id, stage, {hour}, segment, agent_label, human_label, COUNT(*)
        FROM ({completed}) completed
        GROUP BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (rollout_id, stage, hour, segment, agent_label, human_label)
        DO UPDATE SET pairs = {pair_hour}.pairs + excluded.pairs
    """
    discrepant_sql = f"""
        INSERT INTO {discrepant} (rollout_id, stage, agent_id, request_key, segment, agent_label, human_label, occurred_at)
        SELECT rollout_id, stage, agent_id, request_key, segment, agent_label, human_label, occurred_at
        FROM ({completed}) completed WHERE agent_label <> human_label
        ON CONFLICT (agent_id, request_key) DO NOTHING
    """
    mark_rollouts = f"""
        INSERT INTO {rollout_fold} (rollout_id, computed_at)
        SELECT DISTINCT rollout_id, %s FROM {_EVENT} WHERE {in_b} AND rollout_id IS NOT NULL
        ON CONFLICT (rollout_id) DO UPDATE SET computed_at = excluded.computed_at
    """
    pair_params = ("batch", "batch", "batch")
    return [
        (counts, ("now", "batch")),
        (latency, ("batch",)),
        (pair_hour_sql, pair_params),
        (discrepant_sql, pair_params),
        (mark_rollouts, ("now", "batch")),
    ]


def _fold_batch(batch_size: int) -> int:
    v = _vendor()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One fold at a time: the pair rule above relies on it. Another worker finds the
            # lock taken and leaves; the running fold loops until nothing is left.
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_FOLD_LOCK])
            if not cursor.fetchone()[0]:
                return 0
        # On SQLite every write transaction is serialized (BEGIN IMMEDIATE), which does the same.
        cursor.execute(f"SELECT id FROM {_EVENT} WHERE folded_at IS NULL ORDER BY id LIMIT %s", [batch_size])
        ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return 0
        now = timezone.now()
        params = {"now": connection.ops.adapt_datetimefield_value(now), "batch": v["batch_param"](ids)}
        # Compare-and-set: the mark and the counts commit together or not at all.
        cursor.execute(
            f"UPDATE {_EVENT} SET folded_at = %s WHERE {v['in_batch'].format(col='id')} AND folded_at IS NULL",
            [params["now"], params["batch"]],
        )
        if cursor.rowcount != len(ids):
            raise FoldRaced(f"expected to mark {len(ids)} events, marked {cursor.rowcount}")
        for sql, names in _statements(v):
            cursor.execute(sql, [params[name] for name in names])
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
