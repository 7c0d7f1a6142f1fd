"""manage.py grant_app_role ROLE [--print]: give the application's PostgreSQL role what the app
needs and nothing more (docs/operations.md, "Database roles and the audit trail"). Run it as the
role that owns the tables (the one that runs `migrate`), after every `migrate`."""
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from rolloutops.models import AuditCheckpoint, AuditEntry

# The sealer writes these once on an unsealed entry; nothing else in the audit tables is updatable.
SEAL_COLUMNS = ("seq", "prev_hash", "hash", "alg", "sealed_at")


def app_role_grants(role: str, schema: str = "public") -> list[str]:
    q = connection.ops.quote_name
    audit, checkpoints = q(AuditEntry._meta.db_table), q(AuditCheckpoint._meta.db_table)
    return [
        f"GRANT USAGE ON SCHEMA {q(schema)} TO {q(role)}",
        # Rows, never the tables themselves: no TRUNCATE, REFERENCES, TRIGGER, and (not being the
        # owner) no ALTER TABLE, so no DISABLE TRIGGER.
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {q(schema)} TO {q(role)}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {q(schema)} TO {q(role)}",
        f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA {q(schema)} FROM {q(role)}",
        # The audit trail: read, append, seal.
        f"REVOKE UPDATE, DELETE ON {audit}, {checkpoints} FROM {q(role)}",
        f"GRANT UPDATE ({', '.join(SEAL_COLUMNS)}) ON {audit} TO {q(role)}",
    ]


class Command(BaseCommand):
    help = "Grant the application's PostgreSQL role row access, and on the audit trail only append and seal."

    def add_arguments(self, parser):
        parser.add_argument("role", help="the role the web processes and workers connect as")
        parser.add_argument("--print", action="store_true", dest="print_only", help="print the SQL, run nothing")

    def handle(self, *args, role, print_only, **options):
        if connection.vendor != "postgresql":
            raise CommandError("database roles apply to PostgreSQL; the embedded SQLite set-up has one user")
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            schema = cursor.fetchone()[0]
        statements = app_role_grants(role, schema)
        if print_only:
            self.stdout.write(";\n".join(statements) + ";")
            return
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(self.style.SUCCESS(f"granted {role}: rows of every table; on the audit trail append and seal only"))
