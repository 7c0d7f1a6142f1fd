"""PostgreSQL: the partitioned event table's plain copy of event_agent_idempotency goes: the keys
table holds that uniqueness (0012) and nothing reads events by it, while every stored event paid
one more random index write for it. No-op on SQLite, where it is the unique constraint."""
from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # IF EXISTS: how Django drops a conditional unique constraint, should a later migration.
        schema_editor.execute("DROP INDEX IF EXISTS event_agent_idempotency")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0013_eventkey_event_id")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
