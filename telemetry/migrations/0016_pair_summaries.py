"""PairCell and AgreementHour: the pair rollup summed over its hours and over its label pairs, kept
by the fold beside PairHour (telemetry/fold.py) so the shadow figures read a few rows. Filled here
from PairHour as it stands. Folds by code older than this migration do not keep them: stop the fold
workers while migrating (docs/architecture.md, "How a batch of events travels")."""

import django.db.models.deletion
from django.db import migrations, models

BACKFILL = """
INSERT INTO telemetry_paircell (rollout_id, stage, reference, segment, agent_label, reference_label, pairs)
SELECT rollout_id, stage, reference, segment, agent_label, reference_label, SUM(pairs)
FROM telemetry_pairhour GROUP BY rollout_id, stage, reference, segment, agent_label, reference_label;
INSERT INTO telemetry_agreementhour (rollout_id, stage, hour, reference, pairs, agreements)
SELECT rollout_id, stage, hour, reference, SUM(pairs), SUM(CASE WHEN agent_label = reference_label THEN pairs ELSE 0 END)
FROM telemetry_pairhour GROUP BY rollout_id, stage, hour, reference;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('rollouts', '0005_guardrail_state'),
        ('telemetry', '0015_queue_without_rollout_index'),
    ]

    operations = [
        migrations.CreateModel(
            name='AgreementHour',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('stage', models.CharField(max_length=40)),
                ('hour', models.DateTimeField()),
                ('reference', models.CharField(choices=[('human', 'Humans'), ('incumbent', 'Incumbent version')], max_length=9)),
                ('pairs', models.BigIntegerField(default=0)),
                ('agreements', models.BigIntegerField(default=0)),
                ('rollout', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='rollouts.rollout')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('rollout', 'stage', 'hour', 'reference'), name='agreementhour_key')],
            },
        ),
        migrations.CreateModel(
            name='PairCell',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('stage', models.CharField(max_length=40)),
                ('reference', models.CharField(choices=[('human', 'Humans'), ('incumbent', 'Incumbent version')], max_length=9)),
                ('segment', models.CharField(max_length=100)),
                ('agent_label', models.CharField(max_length=200)),
                ('reference_label', models.CharField(max_length=200)),
                ('pairs', models.BigIntegerField(default=0)),
                ('rollout', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='rollouts.rollout')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('rollout', 'stage', 'reference', 'segment', 'agent_label', 'reference_label'), name='paircell_key')],
            },
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
