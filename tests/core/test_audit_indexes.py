"""The audit table keeps one index per lookup (rolloutops migration 0006): each is written twice an
audited write, when the entry is inserted and when the sealer links it, so a duplicate costs every
write in the product. The audit log's filters still find their rows through an index."""
import pytest
from django.db import connection

from rolloutops.audit import audit_record, audit_seal
from rolloutops.models import AuditEntry
from rolloutops.selectors import audit_entries
from tests.plans import index_plan


@pytest.fixture
def indexes(db):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's index list and plans")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [AuditEntry._meta.db_table])
        return dict(cursor.fetchall())


def test_eight_indexes_and_no_copy_of_another(indexes):
    assert len(indexes) == 8, sorted(indexes)
    assert not [name for name, definition in indexes.items() if "(object_type)" in definition]
    assert not [name for name, definition in indexes.items() if definition.endswith("(hash varchar_pattern_ops)")]
    assert [name for name, definition in indexes.items() if "(action" in definition] == ["audit_action"]
    assert "UNIQUE" in indexes["rolloutops_auditentry_hash_key"] and "UNIQUE" in indexes["rolloutops_auditentry_seq_key"]


@pytest.mark.parametrize(("filters", "index"), [
    ({"action": "ticket."}, "audit_action"),            # the log's prefix filter (LIKE 'ticket.%')
    ({"object_type": "escalations.escalationticket"}, "rolloutops__object__dc740a_idx"),
])
def test_the_audit_logs_filters_use_an_index(indexes, filters, index):
    assert index in index_plan(audit_entries(**filters))


def test_an_action_is_found_by_equality_too(indexes):
    assert "audit_action" in index_plan(AuditEntry.objects.filter(action="ticket.claimed"))


def test_entries_are_still_sealed_into_unique_hashes(indexes, operator):
    for n in range(3):
        audit_record(actor=operator, action="test.index", obj=None, after={"n": n})
    audit_seal()
    hashes = list(AuditEntry.objects.filter(action="test.index").values_list("hash", flat=True))
    assert len(set(hashes)) == 3 and all(hashes)
