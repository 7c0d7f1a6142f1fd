"""The fold: adds unfolded events to the rollup tables, exactly once, in set-based SQL for SQLite and PostgreSQL."""
from __future__ import annotations

import time

from django.db import connection, transaction
from django.utils import timezone

from .models import (
    AgreementHour, DiscrepantPair, Event, LatencyHour, PairCell, PairHour, RolloutFold, StageHour, UnfoldedEvent,
)
from .statistics import LATENCY_BUCKETS_MS

# Events a transaction. PostgreSQL's fold is set-based (a grouping, merges and hashes), so big
# batches amortize its fixed costs; SQLite's pairs by nested loops, and its writers wait for it.
BATCH_SIZE = 50_000
SQLITE_BATCH_SIZE = 5_000
# Any constant shared by every fold; pg_try_advisory_xact_lock keys on it.
_FOLD_LOCK = 0x7E1E_F01D

_EVENT = Event._meta.db_table


_BATCH_COLUMNS = ("id", "rollout_id", *UnfoldedEvent.FOLD_COLUMNS)
# The same, as the queue names them: a batch is read off the queue alone.
_QUEUE_COLUMNS = ("event_id AS id", *_BATCH_COLUMNS[1:])
# SQLite keeps the batch taken off the queue in this per-connection temporary table.
_SQLITE_BATCH = "temp.telemetry_fold_batch"
# … and the batch's completed pairs, grouped as PairHour keys them.
_SQLITE_PAIRS = "temp.telemetry_fold_pairs"

# The halves of a pair, by (kind, arm): the candidate's decision, a human's, the incumbent version's.
_HALVES = {
    "c": "kind = 'agent' AND arm = 'candidate'",
    "h": "kind = 'human'",
    "i": "kind = 'agent' AND arm = 'control'",
}
# Each pair: the candidate's half with a reference half.
_REFERENCES = {"human": "h", "incumbent": "i"}


def _latency_case(column: str) -> str:
    # Same buckets as statistics.latency_bucket: bucket i holds (bound[i-1], bound[i]].
    whens = " ".join(
        f"WHEN {column} <= {bound!r} THEN {index}" for index, bound in enumerate(LATENCY_BUCKETS_MS[:-1])
    )
    return f"CASE {whens} ELSE {len(LATENCY_BUCKETS_MS) - 1} END"


def _requests(batch: str, text_order: str = "") -> str:
    """One row per request with an event in the batch: which halves the batch holds, and their columns.

    A grouping rather than a self-join: it costs the same whatever the planner guesses the batch
    size to be (a nested loop over a batch it takes for 20 rows costs minutes at 50,000).
    Each half of a request is at most one row (the idempotency constraints; two candidate
    decisions on one key would need two rollouts of different versions on the same key, and MAX
    then picks one), so MAX picks it. `text_order`: PostgreSQL compares text by bytes (COLLATE
    "C", as SQLite does): the pick is the same, and a byte comparison costs a fraction of a
    locale's (a fifth of a batch's grouping).
    """
    c, h, i = (f"FILTER (WHERE {_HALVES[x]})" for x in "chi")
    return f"""
        SELECT agent_id, request_key, COUNT(*) {c} AS cs, COUNT(*) {h} AS hs, COUNT(*) {i} AS incs,
               MAX(rollout_id) {c} AS rollout_id, MAX(stage{text_order}) {c} AS stage,
               MAX(occurred_at) {c} AS occurred_at, MAX(segment{text_order}) {c} AS c_segment,
               MAX(label{text_order}) {c} AS c_label, MAX(label{text_order}) {h} AS h_label,
               MAX(segment{text_order}) {h} AS h_segment, MAX(label{text_order}) {i} AS i_label,
               MAX(segment{text_order}) {i} AS i_segment
        FROM {batch} GROUP BY agent_id, request_key"""


def _completed(*, requests: str, lateral: bool) -> str:
    """Pairs completed by this batch, one row each (the candidate event's rollout, stage, time and segment).

    A pair (the candidate's decision with a human's, or with the incumbent version's, on the same
    request) completes when its second half is folded: when the batch holds both halves, or one
    half whose partner was folded earlier (stored and no longer queued; a partner outside the
    batch that is still queued completes the pair when its own batch is folded). On PostgreSQL a
    partner whose id is below the lowest queued one is known unqueued without probing the queue:
    in shadow mode people decide after the agent, so the usual partner was folded long before.
    Folds are serialized, so each pair counts once; the partner lookup does not depend on the
    queue, so a partner committed late is still found by the fold of the other half (its commit
    precedes that fold). Only halves without their partner in the batch cost an index lookup, and only
    where such a partner can exist: `agents` (see `_agents`) says, per agent of the batch, whether
    any human or incumbent half of it is stored at all (in shadow beside people, no incumbent
    version decides, and a candidate's decisions folded before any human one need not look).
    """
    queue = UnfoldedEvent._meta.db_table

    def partner(alias: str, half: str, columns: str) -> str:
        condition = " AND ".join(f"{alias}.{part.strip()}" for part in _HALVES[half].split(" AND "))
        unqueued = f"NOT EXISTS (SELECT 1 FROM {queue} q WHERE q.event_id = {alias}.id)"
        if lateral:
            # PostgreSQL: a partner below the lowest queued id (`queue_floor`, read in the same
            # snapshot) cannot be queued. Either arm alone gives the same answer; written first,
            # the comparison spares the probe (the executor evaluates OR's arms in order).
            unqueued = f"({alias}.id < (SELECT low FROM queue_floor) OR {unqueued})"
        where = (f"{alias}.agent_id = r.agent_id AND {alias}.request_key = r.request_key AND {condition}"
                 f"{f' AND {alias}.rollout_id IS NOT NULL' if half == 'c' else ''}"
                 f" AND {unqueued}")
        if lateral:
            # PostgreSQL: one index lookup per lonely half, forced (LATERAL … OFFSET 0): the
            # planner knows nothing of the batch's size and could otherwise hash the event table.
            return f"CROSS JOIN LATERAL (SELECT {columns} FROM {_EVENT} {alias} WHERE {where} LIMIT 1 OFFSET 0) {alias}"
        return f"JOIN {_EVENT} {alias} ON {where}"

    keys = "r.agent_id, r.request_key"
    # PostgreSQL: filter before the lookups (OFFSET 0 keeps the planner from joining the filter after them).
    fence = " OFFSET 0" if lateral else ""
    parts = []
    for reference, half in _REFERENCES.items():
        n = {"h": "hs", "i": "incs"}[half]
        parts.append(f"""
        SELECT r.rollout_id, r.stage, r.occurred_at, {keys}, '{reference}' AS reference,
               CASE WHEN r.c_segment <> '' THEN r.c_segment ELSE r.{half}_segment END AS segment,
               r.c_label AS agent_label, r.{half}_label AS reference_label
        FROM {requests} r WHERE r.cs = 1 AND r.{n} = 1 AND r.rollout_id IS NOT NULL""")
        parts.append(f"""
        SELECT r.rollout_id, r.stage, r.occurred_at, {keys}, '{reference}',
               CASE WHEN r.c_segment <> '' THEN r.c_segment ELSE p.segment END, r.c_label, p.label
        FROM (SELECT * FROM {requests} r WHERE r.{n} = 0 AND r.cs = 1 AND r.rollout_id IS NOT NULL
              AND r.agent_id IN (SELECT agent_id FROM agents WHERE has_{half}){fence}) r
        {partner("p", half, "p.label, p.segment")}""")
        parts.append(f"""
        SELECT a.rollout_id, a.stage, a.occurred_at, {keys}, '{reference}',
               CASE WHEN a.segment <> '' THEN a.segment ELSE r.{half}_segment END, a.label, r.{half}_label
        FROM {requests} r {partner("a", "c", "a.rollout_id, a.stage, a.occurred_at, a.segment, a.label")}
        WHERE r.cs = 0 AND r.{n} = 1""")
    return "\n        UNION ALL".join(parts)


def _agents(requests: str) -> str:
    """Per agent of the batch: is any human half (`has_h`) or incumbent-version half (`has_i`) of
    it stored? One probe of a partial index each (event_human_idempotency, event_incumbent_half)."""
    def stored(half: str) -> str:
        condition = " AND ".join(f"e.{part.strip()}" for part in _HALVES[half].split(" AND "))
        # Not EXISTS: the planner would scan the table "until one is found" (and find none at the
        # cost of reading every row); ordered as the index is, a scalar subquery walks the index.
        return (f"COALESCE((SELECT TRUE FROM {_EVENT} e WHERE e.agent_id = a.agent_id AND {condition} "
                f"ORDER BY e.agent_id, e.request_key LIMIT 1), FALSE)")
    return f"SELECT a.agent_id, {stored('h')} AS has_h, {stored('i')} AS has_i FROM (SELECT DISTINCT agent_id FROM {requests}) a"


def _hourly(*, batch: str, hour) -> str:
    """The batch grouped once by everything the event rollups key or count on (a few hundred rows)."""
    return f"""
        SELECT e.rollout_id AS rollout_id, e.stage AS stage, {hour("e.occurred_at")} AS hour, e.arm AS arm,
               e.outcome AS outcome, e.slow AS slow,
               CASE WHEN e.latency_ms IS NOT NULL THEN {_latency_case("e.latency_ms")} END AS bucket,
               COUNT(*) AS events, MIN(e.occurred_at) AS first_at, MAX(e.occurred_at) AS last_at
        FROM {batch} e WHERE e.rollout_id IS NOT NULL AND e.arm <> 'other'
        GROUP BY 1, 2, 3, 4, 5, 6, 7"""


def _pair_groups(*, completed: str, hour) -> str:
    """The completed pairs grouped by PairHour's key: what PairHour adds, and PairCell and
    AgreementHour sum further (a few hundred rows a batch, however many pairs)."""
    return f"""
        SELECT c.rollout_id AS rollout_id, c.stage AS stage, {hour("c.occurred_at")} AS hour, c.reference AS reference,
               c.segment AS segment, c.agent_label AS agent_label, c.reference_label AS reference_label, COUNT(*) AS pairs
        FROM {completed} c WHERE c.rollout_id IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5, 6, 7"""


def _upserts(*, hourly: str, completed: str, pair_groups: str, least: str, greatest: str) -> list[tuple[str, str]]:
    """(name, INSERT … SELECT … ON CONFLICT) of each rollup, reading the hourly groups `g`, completed
    pairs `c` and the grouped pairs `p`."""
    stage_hour = StageHour._meta.db_table
    latency_hour = LatencyHour._meta.db_table
    pair_hour = PairHour._meta.db_table
    pair_cell = PairCell._meta.db_table
    agreement_hour = AgreementHour._meta.db_table
    discrepant = DiscrepantPair._meta.db_table
    rollout_fold = RolloutFold._meta.db_table

    def count(condition: str) -> str:
        return f"SUM(CASE WHEN {condition} THEN g.events ELSE 0 END)"

    return [
        ("counts", f"""
        INSERT INTO {stage_hour} (rollout_id, stage, hour, arm, decisions, errors, escalations, timed, slow,
                                  first_event_at, last_event_at, updated_at)
        SELECT g.rollout_id, g.stage, g.hour, g.arm, SUM(g.events), {count("g.outcome IN ('error', 'timeout')")},
               {count("g.outcome = 'escalated'")}, {count("g.bucket IS NOT NULL")}, {count("g.slow")},
               MIN(g.first_at), MAX(g.last_at), {{now}}
        FROM {hourly} g WHERE g.rollout_id IS NOT NULL
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (rollout_id, stage, hour, arm) DO UPDATE SET
            decisions = {stage_hour}.decisions + excluded.decisions,
            errors = {stage_hour}.errors + excluded.errors,
            escalations = {stage_hour}.escalations + excluded.escalations,
            timed = {stage_hour}.timed + excluded.timed,
            slow = {stage_hour}.slow + excluded.slow,
            first_event_at = {least}({stage_hour}.first_event_at, excluded.first_event_at),
            last_event_at = {greatest}({stage_hour}.last_event_at, excluded.last_event_at),
            updated_at = excluded.updated_at"""),
        ("latency", f"""
        INSERT INTO {latency_hour} (rollout_id, stage, hour, arm, bucket, count)
        SELECT g.rollout_id, g.stage, g.hour, g.arm, g.bucket, SUM(g.events)
        FROM {hourly} g WHERE g.bucket IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (rollout_id, stage, hour, arm, bucket) DO UPDATE SET count = {latency_hour}.count + excluded.count"""),
        ("pairs", f"""
        INSERT INTO {pair_hour} (rollout_id, stage, hour, reference, segment, agent_label, reference_label, pairs)
        SELECT p.rollout_id, p.stage, p.hour, p.reference, p.segment, p.agent_label, p.reference_label, p.pairs
        FROM {pair_groups} p WHERE TRUE
        ON CONFLICT (rollout_id, stage, hour, reference, segment, agent_label, reference_label)
        DO UPDATE SET pairs = {pair_hour}.pairs + excluded.pairs"""),
        # The same pairs summed over the hours, and over segments and label pairs: every pair
        # PairHour counts, PairCell and AgreementHour count in the same transaction.
        ("pair_cells", f"""
        INSERT INTO {pair_cell} (rollout_id, stage, reference, segment, agent_label, reference_label, pairs)
        SELECT p.rollout_id, p.stage, p.reference, p.segment, p.agent_label, p.reference_label, SUM(p.pairs)
        FROM {pair_groups} p WHERE TRUE
        GROUP BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (rollout_id, stage, reference, segment, agent_label, reference_label)
        DO UPDATE SET pairs = {pair_cell}.pairs + excluded.pairs"""),
        ("agreement_hours", f"""
        INSERT INTO {agreement_hour} (rollout_id, stage, hour, reference, pairs, agreements)
        SELECT p.rollout_id, p.stage, p.hour, p.reference, SUM(p.pairs),
               SUM(CASE WHEN p.agent_label = p.reference_label THEN p.pairs ELSE 0 END)
        FROM {pair_groups} p WHERE TRUE
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (rollout_id, stage, hour, reference)
        DO UPDATE SET pairs = {agreement_hour}.pairs + excluded.pairs,
                      agreements = {agreement_hour}.agreements + excluded.agreements"""),
        ("discrepant", f"""
        INSERT INTO {discrepant} (rollout_id, stage, agent_id, request_key, reference, segment, agent_label,
                                  reference_label, occurred_at)
        SELECT c.rollout_id, c.stage, c.agent_id, c.request_key, c.reference, c.segment, c.agent_label,
               c.reference_label, c.occurred_at
        FROM {completed} c WHERE c.agent_label <> c.reference_label
        ON CONFLICT (rollout_id, reference, request_key) DO NOTHING"""),
        # The watermark of every rollout whose rollups this batch adds to: its events', and the
        # pairs it completes (a human's half may come after the candidate's rollout ended, with no
        # rollout of its own). Figures are cached under it (telemetry/selectors.py).
        ("computed_at", f"""
        INSERT INTO {rollout_fold} (rollout_id, computed_at)
        SELECT r.rollout_id, {{now}} FROM (
            SELECT g.rollout_id FROM {hourly} g WHERE g.rollout_id IS NOT NULL
            UNION SELECT p.rollout_id FROM {pair_groups} p
        ) r WHERE TRUE
        ON CONFLICT (rollout_id) DO UPDATE SET computed_at = excluded.computed_at"""),
    ]


def _postgresql_statements(batch_size: int, now, after: int | None = None) -> list[tuple[str, dict]]:
    """PostgreSQL: one statement takes the batch off the queue, pairs it and upserts every rollup."""
    queue = UnfoldedEvent._meta.db_table
    columns = ", ".join(f"t.{column}" for column in _QUEUE_COLUMNS)
    hour = lambda column: f"date_trunc('hour', {column})"  # noqa: E731 - the session's time zone is UTC
    upserts = _upserts(hourly="hourly", completed="completed", pair_groups="pair_groups", least="LEAST", greatest="GREATEST")
    writes = ",\n".join(f"{name} AS ({sql.format(now='%(now)s')})" for name, sql in upserts)
    # The batch: the ids from the first queued one (after `after`, the previous batch's end, if
    # given: the queue's index then need not step over the entries the last batches deleted) to
    # `batch_size` further, deleted as one id range and returned with the columns the rollups
    # need (the queue row carries them). Ids are dense, so that is about `batch_size` events,
    # and finding the range is one probe of the queue's index rather than a walk over 50,000 of
    # its entries. An id in the range that is not queued (folded already, never stored, or not
    # committed when the range was read) is neither deleted nor returned. Data-modifying CTEs
    # all run to completion in this statement, so the dequeue and every upsert commit together
    # or not at all; the statement's snapshot still shows the batch queued, which only the
    # partner lookups read, and they look up halves outside the batch.
    sql = f"""
        WITH bounds AS MATERIALIZED (
            SELECT low, low + %(batch_size)s - 1 AS high FROM (
                SELECT MIN(event_id) AS low FROM {queue} {"WHERE event_id > %(after)s" if after is not None else ""}
            ) first_queued
        ),
        queue_floor AS MATERIALIZED (SELECT MIN(event_id) AS low FROM {queue}),
        batch AS (
            DELETE FROM {queue} t
            WHERE t.event_id BETWEEN (SELECT low FROM bounds) AND (SELECT high FROM bounds)
            RETURNING {columns}
        ),
        hourly AS MATERIALIZED ({_hourly(batch="batch", hour=hour)}),
        requests AS MATERIALIZED ({_requests("batch", ' COLLATE "C"')}),
        agents AS MATERIALIZED ({_agents("requests")}),
        completed AS MATERIALIZED ({_completed(requests="requests", lateral=True)}),
        pair_groups AS MATERIALIZED ({_pair_groups(completed="completed", hour=hour)}),
        {writes}
        SELECT COUNT(*), (SELECT high FROM bounds) FROM batch"""
    return [
        # The pairing groups up to batch_size rows in memory: room for it rather than a spill to disk.
        ("SET LOCAL work_mem = '64MB'", {}),
        # Costing a merge join probes the queue index's ends, stepping over every entry deleted
        # since the last vacuum (tens of ms a batch by the end of a large fold); the hash join
        # it then chooses costs the same.
        ("SET LOCAL enable_mergejoin = off", {}),
        (sql, {"batch_size": batch_size, "now": now, "after": after}),
    ]


def _sqlite_statements(batch_size: int, now, after: int | None = None) -> list[tuple[str, list]]:
    """SQLite: the batch into a temporary table, off the queue, then one statement per rollup.

    Django stores date-times as 'YYYY-MM-DD HH:MM:SS[.ffffff]' (UTC), so the hour is a prefix.
    """
    queue = UnfoldedEvent._meta.db_table
    columns = ", ".join(_BATCH_COLUMNS)
    hour = lambda column: f"substr({column}, 1, 13) || ':00:00'"  # noqa: E731
    completed = f"({_completed(requests='requests', lateral=False)})"
    upserts = _upserts(hourly="hourly", completed=completed, pair_groups=_SQLITE_PAIRS, least="MIN", greatest="MAX")
    after_clause, after_params = ("WHERE event_id > %s", [after]) if after is not None else ("", [])
    statements = [
        (f"CREATE TEMP TABLE IF NOT EXISTS {_SQLITE_BATCH.removeprefix('temp.')} "
         f"(id INTEGER PRIMARY KEY, {', '.join(_BATCH_COLUMNS[1:])})", []),
        (f"DELETE FROM {_SQLITE_BATCH}", []),
        (f"INSERT INTO {_SQLITE_BATCH} ({columns}) SELECT {', '.join(_QUEUE_COLUMNS)} FROM {queue} WHERE event_id IN "
         f"(SELECT event_id FROM {queue} {after_clause} ORDER BY event_id LIMIT %s)", [*after_params, batch_size]),
        (f"DELETE FROM {queue} WHERE event_id IN (SELECT id FROM {_SQLITE_BATCH})", []),
    ]
    with_sources = (f"WITH hourly AS ({_hourly(batch=_SQLITE_BATCH, hour=hour)}),\n"
                    f"requests AS ({_requests(_SQLITE_BATCH)}),\n"
                    f"agents AS ({_agents('requests')})\n")
    # The grouped pairs, once: the three pair rollups read them from a temporary table.
    pair_columns = "rollout_id, stage, hour, reference, segment, agent_label, reference_label, pairs"
    statements += [
        (f"CREATE TEMP TABLE IF NOT EXISTS {_SQLITE_PAIRS.removeprefix('temp.')} ({pair_columns})", []),
        (f"DELETE FROM {_SQLITE_PAIRS}", []),
        (with_sources + f"INSERT INTO {_SQLITE_PAIRS} ({pair_columns}) {_pair_groups(completed=completed, hour=hour)}", []),
    ]
    for name, sql in upserts:
        statements.append((with_sources + sql.format(now="%s"), [now] if name in ("counts", "computed_at") else []))
    statements.append((f"SELECT COUNT(*), MAX(id) FROM {_SQLITE_BATCH}", []))
    return statements


def _fold_statements(batch_size: int, now, after: int | None = None) -> list[tuple[str, list | dict]]:
    """The statements that take up to `batch_size` queued events (ids above `after`, if given) and fold them.

    The one that returns a row returns how many events it took and the highest id.
    """
    if connection.vendor == "postgresql":
        return _postgresql_statements(batch_size, now, after)
    return _sqlite_statements(batch_size, now, after)


def _fold_batch(batch_size: int, after: int | None = None) -> tuple[int, int | None, bool]:
    """Fold one batch: (events folded, where the next batch starts after, whether the queue
    beyond `after` is used up)."""
    folded, last = 0, None
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One fold at a time: the pair rule above relies on it. Another worker finds the
            # lock taken and leaves; the running fold loops until nothing is left.
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_FOLD_LOCK])
            if not cursor.fetchone()[0]:
                return 0, None, True
        # On SQLite every write transaction is serialized (BEGIN IMMEDIATE), which does the same.
        # Taking the batch off the queue and adding it to the rollups commit together or not at
        # all: a worker killed in between leaves the queue as it was.
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        for sql, params in _fold_statements(batch_size, now, after):
            cursor.execute(sql, params)
            if cursor.description:
                folded, last = cursor.fetchone()
    if connection.vendor == "postgresql":
        return folded, last, last is None  # an id range: used up when no queued id was found
    return folded, last, folded < batch_size  # the first `batch_size` queued ids


def events_fold(*, batch_size: int | None = None, max_seconds: float = 45.0) -> int:
    """Fold unfolded events in transactions of `batch_size` until none are left or time is up; returns how many."""
    if batch_size is None:
        batch_size = BATCH_SIZE if connection.vendor == "postgresql" else SQLITE_BATCH_SIZE
    deadline = time.monotonic() + max_seconds
    folded, after = 0, None
    while True:
        count, last, used_up = _fold_batch(batch_size, after)
        folded += count
        if time.monotonic() >= deadline:
            return folded
        if used_up:
            if after is None:
                return folded
            # Ids below the last batch's, committed since it was read, are still queued: one
            # more pass from the start of the queue (usually empty) before stopping.
            after = None
        else:
            after = last
