"""The audit trail: the hash chain verifies, tampering is caught, PostgreSQL refuses edits, appends serialize."""
import threading
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from rolloutops.audit import GENESIS, audit_record, audit_verify
from rolloutops.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL only")


@pytest.fixture
def tamperable():
    """A raw cursor that can change audit rows, as someone with direct database access could.
    On PostgreSQL the table owner first has to switch the trigger off (rolled back with the test)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE rolloutops_auditentry DISABLE TRIGGER rolloutops_audit_append_only")
        yield cursor


def _entries(n, actor=None):
    return [audit_record(actor=actor, action="test.thing_changed", object_type="test.thing", object_id=i,
                         object_repr=f"thing {i}", before={"n": i}, after={"n": i + 1}) for i in range(n)]


def _verify_audit_failure(capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        call_command("verify_audit")
    assert exc.value.code == 1
    return capsys.readouterr().err


def test_intact_chain_verifies_and_exits_zero(operator, capsys):
    entries = _entries(5, actor=operator)
    first = AuditEntry.objects.order_by("id").first()
    assert first.prev_hash == GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    call_command("verify_audit")  # returns normally: exit status 0
    assert "audit chain intact" in capsys.readouterr().out
    assert audit_verify().checked == AuditEntry.objects.count()


def test_entry_records_actor_source_ip_and_both_sides_of_the_change(operator):
    entry = audit_record(actor=operator, action="rollout.paused", object_type="rollouts.rollout", object_id=7,
                         object_repr="support-bot 1.2", before={"state": "running"}, after={"state": "paused"},
                         source_ip="10.0.0.9")
    entry.refresh_from_db()
    assert (entry.actor_id, entry.actor_label, entry.source_ip) == (operator.pk, "olivia", "10.0.0.9")
    assert (entry.before, entry.after, entry.object_id) == ({"state": "running"}, {"state": "paused"}, "7")


def test_altered_entry_is_named_by_verify_audit(tamperable, capsys):
    entries = _entries(4)
    victim = entries[2]
    tamperable.execute("UPDATE rolloutops_auditentry SET after = %s WHERE id = %s", ['{"n": 1000}', victim.pk])
    err = _verify_audit_failure(capsys)
    assert f"#{victim.pk}" in err
    assert "altered" in err
    assert audit_verify().first_bad_id == victim.pk


def test_altered_actor_label_is_detected(tamperable):
    entries = _entries(3)
    tamperable.execute("UPDATE rolloutops_auditentry SET actor_label = 'someone-else' WHERE id = %s", [entries[0].pk])
    assert audit_verify().first_bad_id == entries[0].pk


def test_deleted_middle_entry_is_detected_at_the_next_one(tamperable, capsys):
    entries = _entries(5)
    tamperable.execute("DELETE FROM rolloutops_auditentry WHERE id = %s", [entries[2].pk])
    err = _verify_audit_failure(capsys)
    assert f"#{entries[3].pk}" in err
    assert "removed" in err


def test_rehashed_entry_still_breaks_the_link_of_its_successor(tamperable):
    # Someone who edits a row and recomputes its own hash must then rewrite every later row.
    entries = _entries(3)
    tamperable.execute("UPDATE rolloutops_auditentry SET hash = %s WHERE id = %s", ["f" * 64, entries[1].pk])
    report = audit_verify()
    assert report.first_bad_id == entries[1].pk


def test_postgres_trigger_refuses_update(postgres_only):
    entry = _entries(1)[0]
    with pytest.raises(DatabaseError) as exc:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE rolloutops_auditentry SET after = '{}' WHERE id = %s", [entry.pk])
    assert "append-only" in str(exc.value)
    entry.refresh_from_db()
    assert entry.after == {"n": 1}


def test_postgres_trigger_refuses_delete(postgres_only):
    entry = _entries(1)[0]
    with pytest.raises(DatabaseError) as exc:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM rolloutops_auditentry WHERE id = %s", [entry.pk])
    assert "append-only" in str(exc.value)
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_postgres_trigger_refuses_orm_delete_too(postgres_only):
    entry = _entries(1)[0]
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            AuditEntry.objects.filter(pk=entry.pk).delete()


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_keep_one_chain():
    """8 writers with their own connections append 20 entries each: no two claim the same predecessor."""
    threads_n, per_thread = 8, 20
    start = threading.Barrier(threads_n)
    errors = []

    def writer(n):
        try:
            start.wait()
            for i in range(per_thread):
                with transaction.atomic():
                    audit_record(actor=None, action="test.concurrent", object_type="test.writer",
                                 object_id=n, object_repr=f"writer {n} entry {i}", after={"i": i})
        except Exception as exc:  # surfaced in the main thread below
            errors.append(exc)
        finally:
            connection.close()

    before = AuditEntry.objects.count()
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert AuditEntry.objects.filter(action="test.concurrent").count() == threads_n * per_thread
    assert AuditEntry.objects.count() == before + threads_n * per_thread
    duplicates = [h for h, n in Counter(AuditEntry.objects.values_list("prev_hash", flat=True)).items() if n > 1]
    assert duplicates == []
    report = audit_verify()
    assert report.intact, report
    assert report.checked == before + threads_n * per_thread
