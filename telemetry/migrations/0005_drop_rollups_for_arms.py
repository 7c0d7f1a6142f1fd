"""The rollups are rebuilt per arm (docs/architecture.md, "Events"): they are derived data, so the old
tables go and the next migration creates the new ones and refolds every event."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0004_event_version_recent_index")]

    operations = [
        migrations.DeleteModel(name="StageHour"),
        migrations.DeleteModel(name="LatencyHour"),
        migrations.DeleteModel(name="PairHour"),
        migrations.DeleteModel(name="DiscrepantPair"),
    ]
