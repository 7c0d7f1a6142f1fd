"""The fold's table of halves waiting for a partner (telemetry.models.WaitingHalf), seeded on
PostgreSQL with every folded half whose partner is not folded yet, as the fold would have left
them: a candidate's decision (of a rollout) without a folded human half on its request, a human's
or the incumbent version's without a folded candidate half. SQLite's fold looks partners up and
leaves the table empty. Its request keys compare by bytes on PostgreSQL (COLLATE "C"). Runs under the fold's lock (telemetry/fold.py), so no fold runs meanwhile."""
from django.db import migrations, models

FOLD_LOCK = 0x7E1E_F01D  # telemetry.fold._FOLD_LOCK
CANDIDATE = "{0}.kind = 'agent' AND {0}.arm = 'candidate' AND {0}.rollout_id IS NOT NULL"
FOLDED = "NOT EXISTS (SELECT 1 FROM telemetry_unfoldedevent q WHERE q.event_id = {0}.id)"


def seed(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
        # Compared by bytes, as the fold groups request keys: a fifth of a locale's cost an index probe.
        cursor.execute('ALTER TABLE telemetry_waitinghalf ALTER COLUMN request_key TYPE varchar(200) COLLATE "C"')
        cursor.execute(f"""
            INSERT INTO telemetry_waitinghalf (agent_id, request_key, half, event_id, occurred_at, rollout_id, stage,
                                               segment, label)
            SELECT e.agent_id, e.request_key,
                   CASE WHEN e.kind = 'human' THEN 'h' WHEN e.arm = 'control' THEN 'i' ELSE 'c' END,
                   e.id, e.occurred_at, CASE WHEN e.kind = 'agent' AND e.arm = 'candidate' THEN e.rollout_id END,
                   CASE WHEN e.kind = 'agent' AND e.arm = 'candidate' THEN e.stage ELSE '' END, e.segment, e.label
            FROM telemetry_event e
            WHERE (e.kind = 'human' OR (e.kind = 'agent' AND e.arm = 'control') OR ({CANDIDATE.format("e")}))
              AND {FOLDED.format("e")}
              AND NOT EXISTS (
                  SELECT 1 FROM telemetry_event p
                  WHERE p.agent_id = e.agent_id AND p.request_key = e.request_key AND {FOLDED.format("p")}
                    AND CASE WHEN e.kind = 'agent' AND e.arm = 'candidate' THEN p.kind = 'human'
                             ELSE {CANDIDATE.format("p")} END)
            ON CONFLICT DO NOTHING""")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0014_drop_event_agent_key_index")]
    operations = [
        migrations.CreateModel(
            name="WaitingHalf",
            fields=[
                ("pk", models.CompositePrimaryKey("agent_id", "request_key", "half", blank=True, editable=False,
                                                  primary_key=True, serialize=False)),
                ("agent_id", models.BigIntegerField()),
                ("request_key", models.CharField(max_length=200)),
                ("half", models.CharField(max_length=1)),
                ("event_id", models.BigIntegerField()),
                ("occurred_at", models.DateTimeField()),
                ("rollout_id", models.BigIntegerField(null=True)),
                ("stage", models.CharField(blank=True, default="", max_length=40)),
                ("segment", models.CharField(blank=True, default="", max_length=100)),
                ("label", models.CharField(max_length=200)),
            ],
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
