"""A checklist item added later has a grace period before it blocks versions evaluated before it."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("agents", "0003_production_lineage"),
    ]

    operations = [
        migrations.AddField(
            model_name="checklistitem",
            name="grace_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
