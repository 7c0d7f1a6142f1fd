"""Sign-in, sign-out, failed sign-ins in the audit trail, and the audit page with its CSV export."""
import csv
import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection

from rolloutops.audit import audit_record
from rolloutops.models import AuditEntry
from tests.conftest import _flush_skips_triggers

pytestmark = pytest.mark.django_db


def test_login_page_renders_for_anonymous_people(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="password"' in response.content


def test_wrong_password_shows_an_error_and_stays_signed_out(client, operator):
    response = client.post("/login/", {"username": "olivia", "password": "not-her-password"})
    assert response.status_code == 200
    assert b"did not match" in response.content
    assert client.get("/audit/").status_code == 302


def test_failed_sign_in_is_audited_with_the_username_never_the_password(client, operator):
    client.post("/login/", {"username": "olivia", "password": "guess-number-one"}, REMOTE_ADDR="192.0.2.7")
    entry = AuditEntry.objects.get(action="auth.login_failed")
    assert entry.object_repr == "olivia"
    assert entry.object_id == str(operator.pk)
    assert entry.source_ip == "192.0.2.7"
    assert entry.after == {"username": "olivia"}
    stored = " ".join(str(v) for v in AuditEntry.objects.values_list("before", "after", "object_repr", "actor_label"))
    assert "guess-number-one" not in stored


def test_failed_sign_in_for_an_unknown_name_is_audited_too(client):
    client.post("/login/", {"username": "mallory", "password": "x" * 12})
    entry = AuditEntry.objects.get(action="auth.login_failed")
    assert (entry.object_repr, entry.object_id) == ("mallory", "")


def test_successful_sign_in_lands_on_the_overview(client, operator):
    response = client.post("/login/", {"username": "olivia", "password": "correct-horse-9"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert not AuditEntry.objects.filter(action="auth.login_failed").exists()


def test_sign_out_is_a_post_and_ends_the_session(client, operator):
    client.force_login(operator)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/audit/").status_code == 302


def test_audit_page_lists_entries_and_filters_by_action(client, operator):
    audit_record(actor=operator, action="rollout.paused", object_repr="support-bot canary")
    audit_record(actor=operator, action="ticket.claimed", object_repr="ticket 42")
    client.force_login(operator)
    page = client.get("/audit/").content.decode()
    assert "rollout.paused" in page and "ticket.claimed" in page
    filtered = client.get("/audit/", {"action": "ticket.claimed"}).content.decode()
    assert "ticket 42" in filtered and "support-bot canary" not in filtered


def test_audit_page_htmx_request_gets_the_table_alone(client, operator):
    audit_record(actor=operator, action="rollout.paused", object_repr="support-bot canary")
    client.force_login(operator)
    response = client.get("/audit/", {"action": "rollout"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="audit-table">')
    assert "<html" not in body
    assert "support-bot canary" in body


def test_audit_page_empty_state(client, manager):
    client.force_login(manager)
    response = client.get("/audit/", {"action": "nothing.like.this"})
    assert b"No audit entries match these filters" in response.content


def test_audit_csv_export_has_a_header_and_only_the_filtered_entries(client, manager):
    audit_record(actor=manager, action="promotion.approved", object_repr="request 3", after={"to": "canary"})
    audit_record(actor=manager, action="promotion.rejected", object_repr="request 4")
    audit_record(actor=manager, action="ticket.resolved", object_repr="ticket 9")
    client.force_login(manager)
    response = client.get("/audit/export.csv", {"action": "promotion."})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["id", "at", "actor", "action"]
    assert sorted(r[3] for r in rows[1:]) == ["promotion.approved", "promotion.rejected"]
    assert {r[2] for r in rows[1:]} == {"maya"}


def test_reviewer_cannot_export_the_audit_trail(client, reviewer):
    client.force_login(reviewer)
    assert client.get("/audit/export.csv").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_role_groups_come_back_after_a_flush():
    # On PostgreSQL the audit guard refuses the flush's TRUNCATE (it would erase the trail); the
    # test database's superuser lets this one through, as it does for every transactional test.
    with connection.execute_wrapper(_flush_skips_triggers):
        call_command("flush", interactive=False, verbosity=0)
    assert set(Group.objects.values_list("name", flat=True)) >= {"operator", "reviewer", "manager"}
