"""The event table's one-column indexes on agent, version and rollout go: each column leads another
index (event_request, event_version_kind_recent, the rollout's with its stage), which serves the
cascades and the foreign-key checks, and each cost every stored event one more index write. Only
the indexes are dropped: the foreign keys stay as they are (Django's own AlterField would drop and
re-add them, validating every row of the table)."""

import django.db.models.deletion
from django.db import migrations, models

_INDEXES = ("telemetry_event_agent_id_e9cc31e6", "telemetry_event_version_id_eced4d0d",
            "telemetry_event_rollout_id_de523e2b")


def forwards(apps, schema_editor):
    # On PostgreSQL dropping the partitioned table's index drops each partition's with it.
    for name in _INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def backwards(apps, schema_editor):
    for name, column in zip(_INDEXES, ("agent_id", "version_id", "rollout_id"), strict=True):
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "telemetry_event" ("{column}")')


class Migration(migrations.Migration):

    dependencies = [
        ("agents", "0004_checklist_grace"),
        ("rollouts", "0005_guardrail_state"),
        ("telemetry", "0017_queue_vacuumed_promptly"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="agent",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name="+", to="agents.agent"),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="rollout",
                    field=models.ForeignKey(blank=True, db_index=False, null=True,
                                            on_delete=django.db.models.deletion.SET_NULL, related_name="+",
                                            to="rollouts.rollout"),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="version",
                    field=models.ForeignKey(blank=True, db_index=False, null=True,
                                            on_delete=django.db.models.deletion.CASCADE, related_name="events",
                                            to="agents.agentversion"),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
