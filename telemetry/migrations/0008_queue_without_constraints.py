"""The fold queue keeps no foreign keys in the database (telemetry/models.py, UnfoldedEvent)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('rollouts', '0004_incumbent_and_error_budget'),
        ('telemetry', '0007_attribute_history'),
    ]

    operations = [
        migrations.AlterField(
            model_name='unfoldedevent',
            name='event',
            field=models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='telemetry.event'),
        ),
        migrations.AlterField(
            model_name='unfoldedevent',
            name='rollout',
            field=models.ForeignKey(db_constraint=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='rollouts.rollout'),
        ),
    ]
