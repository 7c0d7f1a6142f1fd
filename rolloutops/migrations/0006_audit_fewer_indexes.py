"""The audit table keeps one index per lookup (docs/audit.md, "Indexes"): every entry is written
twice (inserted, then sealed by an UPDATE that touches the indexed `seq` and `hash`), so each
index is written twice per audited write. Gone: `object_type` alone (the (object_type, object_id)
index leads with it), the plain `action` index beside its pattern-ops copy (one pattern-ops index
serves both the audit log's prefix filter and equality), and the pattern-ops copy of the `hash`
index (nothing searches hashes by prefix; the unique index stays)."""
from django.db import migrations, models


def _hash_like_index(schema_editor, model) -> str:
    return schema_editor._create_index_name(model._meta.db_table, ["hash"], suffix="_like")


def drop_hash_like(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # only PostgreSQL's schema editor makes a pattern-ops copy of a unique text column
    model = apps.get_model("rolloutops", "AuditEntry")
    schema_editor.execute(schema_editor._delete_index_sql(model, _hash_like_index(schema_editor, model)))


def restore_hash_like(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("rolloutops", "AuditEntry")
    schema_editor.execute(schema_editor._create_like_index_sql(model, model._meta.get_field("hash")))


class Migration(migrations.Migration):

    dependencies = [
        ("rolloutops", "0005_audit_actor_outlives_user"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditentry",
            name="object_type",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="action",
            field=models.CharField(max_length=64),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(fields=["action"], name="audit_action", opclasses=["varchar_pattern_ops"]),
        ),
        migrations.RunPython(drop_hash_like, restore_hash_like),
    ]
