"""A ticket's history rows keep one index by ticket: ticketevent_by_ticket (ticket_id, at) serves
the foreign key and the history in order, so the one-column index went (one index write fewer for
every claim, release and resolution)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('escalations', '0003_ticket_indexes_once'),
    ]

    operations = [
        migrations.AlterField(
            model_name='ticketevent',
            name='ticket',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='events', to='escalations.escalationticket'),
        ),
    ]
