"""On PostgreSQL the claim is a prepared statement (docs/scaling.md, "Prepared statements"): planned
once a connection, its generic plan still picks by priority then age from both queues, through
their partial indexes."""
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from escalations.claims import claimable_queues_sql, lease_duration
from escalations.models import EscalationTicket, TicketStatus
from escalations.services import _claim_statement, ticket_claim_next
from rolloutops.audit import audit_seal, audit_verify


@pytest.fixture(autouse=True)
def _fresh_connection(db):
    # Each test counts the statements prepared on its own connection.
    if connection.vendor == "postgresql" and connection.connection is not None:
        with connection.cursor() as cursor:
            cursor.execute("DEALLOCATE ALL")  # psycopg forgets its own names too, seeing it
    yield


def prepared_claims() -> list[tuple[str, int, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, generic_plans, custom_plans FROM pg_prepared_statements "
                       "WHERE statement LIKE %s", ["%open_queue%lapsed_queue%"])
        return cursor.fetchall()


def test_the_queues_statuses_are_written_into_the_sql():
    # A bound status would leave a plan made once unable to tell which partial index holds the queue.
    (open_sql, open_params), (lapsed_sql, lapsed_params) = claimable_queues_sql(timezone.now())
    assert open_sql == "status = 'open'" and open_params == []
    assert lapsed_sql.startswith("status = 'claimed' AND ") and len(lapsed_params) == 1


def test_the_claim_is_prepared_after_a_few_runs_and_reused(postgres_only, make_ticket, reviewer, settings):
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    assert threshold == 5  # the default straight to PostgreSQL (rolloutops/settings.py)
    for _ in range(12):
        make_ticket()
    for _ in range(threshold):
        assert ticket_claim_next(reviewer=reviewer) is not None
    assert prepared_claims() == []  # a connection dropped after each request would never gain
    for _ in range(12 - threshold):
        assert ticket_claim_next(reviewer=reviewer) is not None
    [(_, generic, custom)] = prepared_claims()  # open tickets only: the one statement that takes them
    assert generic + custom == 12 - threshold  # reused from then on


@pytest.fixture
def prepare_at_once(postgres_only, db, monkeypatch):
    connection.ensure_connection()
    monkeypatch.setattr(connection.connection, "prepare_threshold", 0)


def test_under_the_generic_plan_claims_go_by_priority_then_age_from_both_queues(prepare_at_once, make_ticket,
                                                                                reviewer, reviewer2):
    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
    try:
        now = timezone.now()
        late_p1, early_p2, later_p2 = make_ticket(priority="P1"), make_ticket(priority="P2"), make_ticket(priority="P2")
        lapsed = make_ticket(priority="P1")
        EscalationTicket.objects.filter(pk=lapsed.pk).update(
            status=TicketStatus.CLAIMED, claimed_by=reviewer2, claimed_at=now - timedelta(hours=2),
            lease_expires_at=now - timedelta(minutes=1), created_at=now - timedelta(days=1))
        order = [ticket_claim_next(reviewer=reviewer).pk for _ in range(4)]
        assert order == [lapsed.pk, late_p1.pk, early_p2.pk, later_p2.pk]
        assert ticket_claim_next(reviewer=reviewer) is None
        # The open tickets' statement ran five times (it found the lapsed claim first, left it, then
        # took three open tickets and found none); the one that takes a lapsed claim, once.
        assert sorted((generic, custom) for _, generic, custom in prepared_claims()) == [(1, 0), (5, 0)]
        audit_seal()
        assert audit_verify().intact
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET plan_cache_mode")


def test_the_generic_plan_reads_both_partial_indexes(prepare_at_once, make_ticket, reviewer):
    make_ticket()
    assert ticket_claim_next(reviewer=reviewer) is not None
    [(name, _, _)] = prepared_claims()
    now = timezone.now()
    _, params = _claim_statement({}, reviewer=reviewer, now=now, lease=now + lease_duration())
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny test tables: ask what an index can serve
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"EXPLAIN EXECUTE {name}({', '.join(['%s'] * len(params))})", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "ticket_open_queue" in plan and "ticket_claimed_leases" in plan, plan
