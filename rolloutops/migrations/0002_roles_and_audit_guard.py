"""The three role groups, and on PostgreSQL a trigger that makes the audit table append-only."""
from django.db import migrations

ROLES = ("operator", "reviewer", "manager")

GUARD_SQL = """
CREATE OR REPLACE FUNCTION rolloutops_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only: % refused on rolloutops_auditentry', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS rolloutops_audit_append_only ON rolloutops_auditentry;
CREATE TRIGGER rolloutops_audit_append_only
    BEFORE UPDATE OR DELETE ON rolloutops_auditentry
    FOR EACH ROW EXECUTE FUNCTION rolloutops_audit_append_only();
"""

UNGUARD_SQL = """
DROP TRIGGER IF EXISTS rolloutops_audit_append_only ON rolloutops_auditentry;
DROP FUNCTION IF EXISTS rolloutops_audit_append_only();
"""


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


def guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # params=None: the SQL goes through as written (its RAISE format uses %, not a placeholder).
        schema_editor.execute(GUARD_SQL, params=None)


def unguard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNGUARD_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("rolloutops", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(create_roles, migrations.RunPython.noop),
        migrations.RunPython(guard, unguard),
    ]
