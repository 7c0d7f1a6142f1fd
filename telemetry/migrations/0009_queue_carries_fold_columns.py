"""The fold queue carries the columns the fold reads (telemetry/models.py, UnfoldedEvent); rows queued
before this get them from their events."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('telemetry', '0008_queue_without_constraints'),
    ]

    operations = [
        migrations.AddField(
            model_name='unfoldedevent',
            name='agent_id',
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='unfoldedevent',
            name='arm',
            field=models.CharField(default='', max_length=9),
        ),
        migrations.AddField(
            model_name='unfoldedevent',
            name='kind',
            field=models.CharField(default='', max_length=5),
        ),
        migrations.AddField(
            model_name='unfoldedevent',
            name='label',
            field=models.CharField(default='', max_length=200),
        ),
        migrations.AddField(
            model_name='unfoldedevent',
            name='latency_ms',
            field=models.FloatField(null=True),
        ),
        migrations.AddField(
            model_name='unfoldedevent',
            name='occurred_at',
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name='unfoldedevent',
            name='outcome',
            field=models.CharField(default='', max_length=10),
        ),
        migrations.AddField(
            model_name='unfoldedevent',
            name='request_key',
            field=models.CharField(default='', max_length=200),
        ),
        migrations.AddField(
            model_name='unfoldedevent',
            name='segment',
            field=models.CharField(blank=True, default='', max_length=100),
        ),
        migrations.AddField(
            model_name='unfoldedevent',
            name='slow',
            field=models.BooleanField(null=True),
        ),
        migrations.AddField(
            model_name='unfoldedevent',
            name='stage',
            field=models.CharField(blank=True, default='', max_length=40),
        ),
        migrations.RunSQL("UPDATE telemetry_unfoldedevent SET agent_id = e.agent_id, request_key = e.request_key, kind = e.kind, arm = e.arm, stage = e.stage, occurred_at = e.occurred_at, segment = e.segment, label = e.label, outcome = e.outcome, latency_ms = e.latency_ms, slow = e.slow FROM telemetry_event e WHERE e.id = telemetry_unfoldedevent.event_id", migrations.RunSQL.noop),
    ]
