"""An index of the incumbent version's halves of pairs, for the fold (telemetry/models.py, Event)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('agents', '0003_production_lineage'),
        ('rollouts', '0004_incumbent_and_error_budget'),
        ('telemetry', '0009_queue_carries_fold_columns'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='event',
            index=models.Index(condition=models.Q(('arm', 'control'), ('kind', 'agent')), fields=['agent', 'request_key'], name='event_incumbent_half'),
        ),
    ]
