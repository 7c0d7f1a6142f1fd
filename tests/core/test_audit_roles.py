"""PostgreSQL: the application's own database role (docs/operations.md) cannot switch the audit
guard off, empty, rewrite or delete the trail, and every write the app makes still works."""
import secrets

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from escalations.services import ticket_claim_next
from rolloutops.audit import audit_seal, audit_verify
from rolloutops.audit_checkpoints import audit_checkpoint
from rolloutops.models import AuditEntry
from rolloutops.tokens import token_issue

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def app_role(settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("database roles are PostgreSQL's")
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")
    name, password = f"rolloutops_app_{secrets.token_hex(4)}", secrets.token_hex(16)
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{name}" LOGIN PASSWORD %s', [password])
    call_command("grant_app_role", name)  # as the owner (here the test database's superuser)
    yield name, password
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP OWNED BY "{name}"')
        cursor.execute(f'DROP ROLE "{name}"')


@pytest.fixture
def as_app_role(app_role):
    """Django's own connection, reconnected as the application role, then back."""
    saved = dict(connection.settings_dict)

    def switch():
        connection.close()
        connection.settings_dict.update({"USER": app_role[0], "PASSWORD": app_role[1]})

    yield switch
    connection.close()
    connection.settings_dict.clear()
    connection.settings_dict.update(saved)


def _connect(role: str, password: str) -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, dbname=s["NAME"], user=role,
                           password=password, autocommit=True)


def test_the_app_role_cannot_disable_the_guard_truncate_update_or_delete(app_role, operator):
    token_issue(user=operator, scopes="user", name="audited")
    audit_seal()
    entry = AuditEntry.objects.get()
    role, password = app_role
    with _connect(role, password) as conn:
        attempts = {
            "disable trigger": "ALTER TABLE rolloutops_auditentry DISABLE TRIGGER rolloutops_audit_append_only",
            "disable all": "ALTER TABLE rolloutops_auditentry DISABLE TRIGGER ALL",
            "truncate": "TRUNCATE rolloutops_auditentry",
            "truncate checkpoints": "TRUNCATE rolloutops_auditcheckpoint",
            "update content": f"UPDATE rolloutops_auditentry SET action = 'x' WHERE id = {entry.pk}",
            "delete": f"DELETE FROM rolloutops_auditentry WHERE id = {entry.pk}",
            "delete checkpoints": "DELETE FROM rolloutops_auditcheckpoint",
            "drop the guard": "DROP TRIGGER rolloutops_audit_append_only ON rolloutops_auditentry",
            "replace the guard": "CREATE OR REPLACE FUNCTION rolloutops_audit_append_only() RETURNS trigger "
                                 "AS $$ BEGIN RETURN NEW; END; $$ LANGUAGE plpgsql",
        }
        for what, sql in attempts.items():
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
                conn.execute(sql)
            assert "must be owner" in str(refused.value) or "permission denied" in str(refused.value), what
        # The sealing columns are writable, but the guard refuses them on a sealed entry.
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only: UPDATE refused"):
            conn.execute(f"UPDATE rolloutops_auditentry SET hash = repeat('a', 64) WHERE id = {entry.pk}")
    entry.refresh_from_db()
    assert entry.action == "token.issued"
    assert audit_verify().intact


def test_the_app_works_as_the_app_role(as_app_role, operator, reviewer, capsys):
    from tests.factories import AgentFactory

    from escalations.services import ticket_open

    agent = AgentFactory()
    as_app_role()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0].startswith("rolloutops_app_")
    token_issue(user=operator, scopes="user", name="issued-by-the-app-role")
    ticket, _ = ticket_open(actor=None, agent=agent, request_key="r-1", reason="policy", priority="P2",
                            context={"input": "x", "attempts": [{"tool": "t"}]})
    assert ticket_claim_next(reviewer=reviewer).pk == ticket.pk
    assert audit_seal() == 3
    audit_checkpoint()
    call_command("verify_audit")
    assert "audit chain intact: 3 entries verified" in capsys.readouterr().out
