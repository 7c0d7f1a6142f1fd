"""Drop the single-column indexes on ticket.agent and ticket.claimed_by: each is the leading column
of a composite index (ticket_one_per_request, ticket_by_claimant) that serves the same lookups, and
every index is one more write per claim (bench/README.md, "Escalation claims")."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('agents', '0004_checklist_grace'),
        ('escalations', '0002_ticket_events'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='escalationticket',
            name='agent',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='tickets', to='agents.agent'),
        ),
        migrations.AlterField(
            model_name='escalationticket',
            name='claimed_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
    ]
