"""PostgreSQL: each idempotency key names the id of the event it let in (telemetry/services.py picks
the id before storing), so ingestion joins keys to events on one integer. No-op on SQLite."""
from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE telemetry_eventkey ADD COLUMN IF NOT EXISTS event_id bigint")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0012_partition_events")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
