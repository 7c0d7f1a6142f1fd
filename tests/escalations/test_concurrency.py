"""Claiming under contention: many reviewers at once, real connections, every ticket exactly once."""
import threading
from collections import Counter

import pytest
from django.db import connection

from escalations.models import EscalationTicket, TicketStatus
from escalations.services import ticket_claim, ticket_claim_next
from rolloutops.audit import audit_seal, audit_verify
from rolloutops.exceptions import Conflict
from rolloutops.models import AuditEntry
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_in_threads(count: int, work) -> list:
    results, errors = [None] * count, []
    start = threading.Barrier(count)

    def run(i):
        try:
            start.wait()
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def drain_with_reviewers(count: int) -> list[int]:
    """`count` reviewers, each on its own connection, claim next until the queue is empty: every
    ticket id they got, in one list."""
    reviewers = [UserFactory(username=f"rev{i}", roles=["reviewer"]) for i in range(count)]

    def claim_until_empty(i):
        got = []
        while (ticket := ticket_claim_next(reviewer=reviewers[i])) is not None:
            got.append(ticket.pk)
        return got

    return [pk for got in run_in_threads(count, claim_until_empty) for pk in got]


def test_parallel_claim_next_gives_every_ticket_to_exactly_one_reviewer(postgres_only, make_ticket):
    tickets = [make_ticket(priority=f"P{1 + i % 4}") for i in range(50)]
    claimed = drain_with_reviewers(8)
    assert sorted(claimed) == sorted(t.pk for t in tickets)
    assert Counter(claimed).most_common(1)[0][1] == 1
    assert EscalationTicket.objects.filter(status=TicketStatus.CLAIMED).count() == 50
    assert AuditEntry.objects.filter(action="ticket.claimed").count() == 50
    audit_seal()
    report = audit_verify()
    assert report.intact and report.checked == AuditEntry.objects.count()


def test_parallel_claim_next_over_open_tickets_and_lapsed_claims(postgres_only, make_ticket):
    # An open ticket is taken by one autocommitted statement; a lapsed claim first in line by a
    # transaction that also writes its lapse: both ways at once, every ticket exactly once.
    from datetime import timedelta

    from django.utils import timezone

    from escalations.models import TicketEvent

    tickets = [make_ticket(priority=f"P{1 + i % 4}") for i in range(40)]
    gone = UserFactory(username="gone", roles=["reviewer"])
    lapsed = tickets[::4]  # every priority
    EscalationTicket.objects.filter(pk__in=[t.pk for t in lapsed]).update(
        status=TicketStatus.CLAIMED, claimed_by=gone, claimed_at=timezone.now() - timedelta(hours=1),
        lease_expires_at=timezone.now() - timedelta(minutes=1))
    claimed = drain_with_reviewers(8)
    assert sorted(claimed) == sorted(t.pk for t in tickets)
    assert Counter(claimed).most_common(1)[0][1] == 1
    assert not EscalationTicket.objects.filter(claimed_by=gone).exists()
    assert AuditEntry.objects.filter(action="ticket.claimed").count() == 40
    assert sorted(int(pk) for pk in AuditEntry.objects.filter(action="ticket.lease_expired")
                  .values_list("object_id", flat=True)) == sorted(t.pk for t in lapsed)
    assert TicketEvent.objects.filter(kind="lease_expired").count() == len(lapsed)
    audit_seal()
    assert audit_verify().intact


def test_parallel_claims_of_one_ticket_have_one_winner(postgres_only, make_ticket):
    ticket = make_ticket()
    reviewers = [UserFactory(username=f"rev{i}", roles=["reviewer"]) for i in range(8)]

    def claim(i):
        try:
            return ticket_claim(reviewer=reviewers[i], ticket=ticket).claimed_by.username
        except Conflict as refused:
            return f"refused:{refused.extra['claimed_by']}"

    outcomes = run_in_threads(8, claim)
    winners = [o for o in outcomes if not o.startswith("refused:")]
    assert len(winners) == 1
    assert all(o == f"refused:{winners[0]}" for o in outcomes if o.startswith("refused:"))


def test_parallel_retries_of_one_open_create_one_ticket(postgres_only, agent, operator):
    from escalations.services import ticket_open

    def open_it(i):
        ticket, created = ticket_open(actor=operator, agent="claims-triage", request_key="retry-storm",
                                      reason="timeout", priority="P2", context={"input": "x"})
        return ticket.pk, created

    outcomes = run_in_threads(8, open_it)
    assert len({pk for pk, _ in outcomes}) == 1
    assert sum(created for _, created in outcomes) == 1
    assert EscalationTicket.objects.filter(request_key="retry-storm").count() == 1
