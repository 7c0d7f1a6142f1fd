"""PostgreSQL: a BRIN index of events by occurred_at, for the retention's deletes (telemetry/retention.py).
Events arrive roughly in time order, so a few pages summarize millions of rows and ingestion barely
pays for it. No-op on SQLite."""
from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE INDEX IF NOT EXISTS event_occurred_brin ON telemetry_event USING brin (occurred_at)")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS event_occurred_brin")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0010_event_incumbent_half")]
    operations = [migrations.RunPython(forwards, backwards)]
