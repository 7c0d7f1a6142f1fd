"""The fold queue loses its index on rollout_id: every ingested event paid a write to it, and the only
reader by rollout, `pending_events`, counts the handful of rows queued between folds
(docs/architecture.md, "Events")."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('rollouts', '0005_guardrail_state'),
        ('telemetry', '0014_drop_event_agent_key_index'),
    ]

    operations = [
        migrations.AlterField(
            model_name='unfoldedevent',
            name='rollout',
            field=models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='rollouts.rollout'),
        ),
    ]
