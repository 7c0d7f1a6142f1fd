"""PostgreSQL: autovacuum clears the fold queue's deleted rows after every 10,000 of them, whatever
the table's size, instead of after a fifth of it. The pages count the queue (pending events) and the
count walks rows not yet cleared: 264,000 of them cost a view ~14 ms (docs/scaling.md, "The fold
queue and autovacuum")."""

from django.db import migrations

_TABLE = "telemetry_unfoldedevent"
_SETTINGS = "autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {_TABLE} SET ({_SETTINGS})")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {_TABLE} RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold)")


class Migration(migrations.Migration):

    dependencies = [("telemetry", "0016_pair_summaries")]

    operations = [migrations.RunPython(forwards, backwards)]
