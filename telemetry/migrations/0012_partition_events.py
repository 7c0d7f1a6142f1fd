"""PostgreSQL: the raw event table becomes partitioned by occurred_at, a partition a month
(telemetry/partitions.py), so the retention drops a month at a time instead of deleting rows.

A partitioned table cannot keep a unique index unless it holds the partition key, and the
idempotency of events is per decider whatever their time (docs/architecture.md, "Events"): the
two partial unique indexes move to a table of keys (agent, version, request key, kind, and the
occurred_at of the event stored, for the retention), which ingestion writes in the statement that
stores the events (telemetry/services.py). Their names stay on the event table as plain indexes,
for the fold's lookups. The rows, the identity, every other index and foreign key carry over.
No-op on SQLite. Irreversible (the keys would have to become unique again: restore a backup)."""
from datetime import datetime, timezone

from django.db import migrations

TABLE = "telemetry_event"
KEYS = "telemetry_eventkey"
MONTHS_AHEAD = 1


def _month(moment, shift=0):
    index = moment.year * 12 + moment.month - 1 + shift
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.utc)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND schemaname = current_schema()",
                       [TABLE])
        indexes = [(name, definition) for name, definition in cursor.fetchall() if name != f"{TABLE}_pkey"]
        cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE conrelid = %s::regclass AND contype = 'f'", [TABLE])
        foreign_keys = cursor.fetchall()
        cursor.execute(f"SELECT MIN(occurred_at), MAX(id) FROM {TABLE}")
        oldest, last_id = cursor.fetchone()

        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_flat")
        cursor.execute(f"CREATE TABLE {TABLE} (LIKE {TABLE}_flat INCLUDING DEFAULTS INCLUDING IDENTITY) "
                       f"PARTITION BY RANGE (occurred_at)")
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        now = datetime.now(timezone.utc)
        month = _month(oldest or now)
        while month <= _month(now, MONTHS_AHEAD):
            cursor.execute(f"CREATE TABLE {TABLE}_p{month:%Y%m} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)",
                           [month, _month(month, 1)])
            month = _month(month, 1)
        cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {TABLE}_flat")
        cursor.execute(f"CREATE TABLE {KEYS} (agent_id bigint NOT NULL, version_id bigint, "
                       f"request_key varchar(200) NOT NULL, kind varchar(5) NOT NULL, occurred_at timestamptz NOT NULL)")
        cursor.execute(f"INSERT INTO {KEYS} SELECT agent_id, version_id, request_key, kind, occurred_at FROM {TABLE}_flat")
        cursor.execute(f"DROP TABLE {TABLE}_flat")
        cursor.execute(f"SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [TABLE, (last_id or 0) + 1])
        cursor.execute(f"CREATE UNIQUE INDEX {KEYS}_agent ON {KEYS} (agent_id, version_id, request_key) "
                       f"WHERE kind = 'agent'")
        cursor.execute(f"CREATE UNIQUE INDEX {KEYS}_human ON {KEYS} (agent_id, request_key) WHERE kind = 'human'")
        cursor.execute(f"CREATE INDEX {KEYS}_occurred ON {KEYS} USING brin (occurred_at)")
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, occurred_at)")
        for name, definition in indexes:
            # Indexes of a partitioned table are created on each partition (and on later ones).
            cursor.execute(definition.replace("CREATE UNIQUE INDEX", "CREATE INDEX")
                           .replace(f" ON {TABLE}_flat ", f" ON {TABLE} ").replace(f" ON public.{TABLE}_flat ",
                                                                                    f" ON public.{TABLE} "))
        for name, definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} {definition}")


class Migration(migrations.Migration):
    atomic = True
    dependencies = [("telemetry", "0011_event_occurred_brin")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
