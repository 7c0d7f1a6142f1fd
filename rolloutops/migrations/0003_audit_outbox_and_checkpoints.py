"""The audit trail becomes an outbox sealed into the chain afterwards, with keyed checkpoints
(docs/audit.md); on PostgreSQL the guard now also refuses TRUNCATE and covers the checkpoints.

Existing entries keep their SHA-256 hashes (alg "sha256") and get their chain position in id
order, which is the order they were chained in."""
from django.db import migrations, models

# The one UPDATE allowed on an entry is its sealing: the chain fields written once, on a row that
# had none, with every other column (including any added later: the row is compared as a whole)
# unchanged. Row-level for UPDATE/DELETE, statement-level for TRUNCATE (which skips row triggers).
GUARD_SQL = """
CREATE OR REPLACE FUNCTION rolloutops_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.seq IS NULL AND NEW.seq IS NOT NULL AND NEW.hash IS NOT NULL
           AND (to_jsonb(NEW) - '{seq,prev_hash,hash,alg,sealed_at}'::text[])
             = (to_jsonb(OLD) - '{seq,prev_hash,hash,alg,sealed_at}'::text[]) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION rolloutops_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS rolloutops_audit_append_only ON rolloutops_auditentry;
CREATE TRIGGER rolloutops_audit_append_only
    BEFORE UPDATE OR DELETE ON rolloutops_auditentry
    FOR EACH ROW EXECUTE FUNCTION rolloutops_audit_append_only();
DROP TRIGGER IF EXISTS rolloutops_audit_no_truncate ON rolloutops_auditentry;
CREATE TRIGGER rolloutops_audit_no_truncate
    BEFORE TRUNCATE ON rolloutops_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION rolloutops_audit_append_only();

DROP TRIGGER IF EXISTS rolloutops_checkpoint_append_only ON rolloutops_auditcheckpoint;
CREATE TRIGGER rolloutops_checkpoint_append_only
    BEFORE UPDATE OR DELETE ON rolloutops_auditcheckpoint
    FOR EACH ROW EXECUTE FUNCTION rolloutops_refuse_change();
DROP TRIGGER IF EXISTS rolloutops_checkpoint_no_truncate ON rolloutops_auditcheckpoint;
CREATE TRIGGER rolloutops_checkpoint_no_truncate
    BEFORE TRUNCATE ON rolloutops_auditcheckpoint
    FOR EACH STATEMENT EXECUTE FUNCTION rolloutops_refuse_change();
"""

UNGUARD_SQL = """
DROP TRIGGER IF EXISTS rolloutops_audit_append_only ON rolloutops_auditentry;
DROP TRIGGER IF EXISTS rolloutops_audit_no_truncate ON rolloutops_auditentry;
DROP TRIGGER IF EXISTS rolloutops_checkpoint_append_only ON rolloutops_auditcheckpoint;
DROP TRIGGER IF EXISTS rolloutops_checkpoint_no_truncate ON rolloutops_auditcheckpoint;
DROP FUNCTION IF EXISTS rolloutops_refuse_change();
"""

# Migration 0002's guard, restored when this one is reversed.
OLD_GUARD_SQL = """
CREATE OR REPLACE FUNCTION rolloutops_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only: % refused on rolloutops_auditentry', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER rolloutops_audit_append_only
    BEFORE UPDATE OR DELETE ON rolloutops_auditentry
    FOR EACH ROW EXECUTE FUNCTION rolloutops_audit_append_only();
"""


def _postgres(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def drop_old_guard(apps, schema_editor):
    # The backfill below updates every existing row, which the old guard refuses.
    if _postgres(schema_editor):
        schema_editor.execute("DROP TRIGGER IF EXISTS rolloutops_audit_append_only ON rolloutops_auditentry", params=None)


def restore_old_guard(apps, schema_editor):
    if _postgres(schema_editor):
        schema_editor.execute(OLD_GUARD_SQL, params=None)


def backfill_positions(apps, schema_editor):
    """Entries chained before this migration: position = id order, algorithm plain SHA-256."""
    if _postgres(schema_editor):
        schema_editor.execute("""
            UPDATE rolloutops_auditentry AS e SET seq = ranked.n, alg = 'sha256', sealed_at = e.at
            FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM rolloutops_auditentry) AS ranked
            WHERE ranked.id = e.id
        """, params=None)
        return
    AuditEntry = apps.get_model("rolloutops", "AuditEntry")
    for n, (pk, at) in enumerate(AuditEntry.objects.order_by("id").values_list("id", "at").iterator(), start=1):
        AuditEntry.objects.filter(pk=pk).update(seq=n, alg="sha256", sealed_at=at)


def guard(apps, schema_editor):
    if _postgres(schema_editor):
        schema_editor.execute(GUARD_SQL, params=None)


def unguard(apps, schema_editor):
    if _postgres(schema_editor):
        schema_editor.execute(UNGUARD_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("rolloutops", "0002_roles_and_audit_guard"),
    ]

    operations = [
        migrations.RunPython(drop_old_guard, restore_old_guard),
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField()),
                ("seq", models.BigIntegerField()),
                ("head_id", models.BigIntegerField(null=True)),
                ("head_hash", models.CharField(max_length=64)),
                ("key_id", models.CharField(max_length=32)),
                ("mac", models.CharField(max_length=64)),
            ],
            options={"ordering": ["-id"]},
        ),
        migrations.AddField(
            model_name="auditentry",
            name="alg",
            field=models.CharField(blank=True, default="", max_length=40),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="sealed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="seq",
            field=models.BigIntegerField(blank=True, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="hash",
            field=models.CharField(blank=True, max_length=64, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="prev_hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(condition=models.Q(("seq__isnull", True)), fields=["id"], name="audit_unsealed"),
        ),
        migrations.RunPython(backfill_positions, migrations.RunPython.noop),
        migrations.RunPython(guard, unguard),
    ]
