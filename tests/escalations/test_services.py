"""Claims are leases held by one person; resolving records the human decision; sweeps are once-only."""
import json
from datetime import timedelta

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone


from escalations.claims import claimable_q, claimable_queues_sql, is_claimable
from escalations.models import EscalationTicket, TicketEvent, TicketStatus
from escalations.services import (
    ticket_claim,
    ticket_claim_next,
    ticket_release,
    ticket_renew,
    ticket_resolve,
    tickets_notify_sla_breaches,
    tickets_sweep_expired_leases,
)
from rolloutops.audit import audit_seal, audit_verify
from rolloutops.exceptions import Conflict, Forbidden
from rolloutops.models import AuditEntry
from rollouts.models import Rollout
from telemetry.models import Event

pytestmark = pytest.mark.django_db


def test_claim_next_takes_highest_priority_then_oldest(make_ticket, reviewer):
    old_p3 = make_ticket(priority="P3")
    first_p1 = make_ticket(priority="P1")
    second_p1 = make_ticket(priority="P1")
    order = [ticket_claim_next(reviewer=reviewer).pk for _ in range(3)]
    assert order == [first_p1.pk, second_p1.pk, old_p3.pk]
    assert ticket_claim_next(reviewer=reviewer) is None


def test_claim_next_honours_filters(make_ticket, reviewer):
    make_ticket(priority="P1", reason="policy")
    timeout = make_ticket(priority="P4", reason="timeout")
    assert ticket_claim_next(reviewer=reviewer, reason="timeout").pk == timeout.pk
    assert ticket_claim_next(reviewer=reviewer, reason="timeout") is None
    assert ticket_claim_next(reviewer=reviewer, agent="no-such-agent") is None


def test_claim_next_returns_the_ticket_as_stored_with_its_history_row_and_audit_entry(make_ticket, reviewer, settings):
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "CLAIM_LEASE_SECONDS": 600}
    opened = make_ticket(priority="P1", context={"input": {"text": "refund?"}, "attempts": [{"tool": "lookup"}],
                                                 "segment": "eu"})
    claimed = ticket_claim_next(reviewer=reviewer)
    stored = EscalationTicket.objects.select_related("agent", "version", "claimed_by").get(pk=opened.pk)
    fields = ("pk", "status", "claimed_by_id", "claimed_at", "lease_expires_at", "context", "request_key", "priority",
              "due_at", "created_at", "has_context", "agent_id", "version_id", "rollout_id")
    assert [getattr(claimed, f) for f in fields] == [getattr(stored, f) for f in fields]
    assert (claimed.agent.slug, claimed.claimed_by.username, claimed.status) == (stored.agent.slug, "rita", "claimed")
    assert claimed.version == stored.version
    assert claimed.lease_expires_at - claimed.claimed_at == timedelta(seconds=600)
    history = list(TicketEvent.objects.filter(ticket=opened).values_list("kind", "actor__username", "detail"))
    assert history == [("opened", "olivia", {"reason": "low_confidence", "priority": "P1"}),
                       ("claimed", "rita", {"lease_expires_at": claimed.lease_expires_at.isoformat()})]
    entry = AuditEntry.objects.get(action="ticket.claimed")
    assert (entry.object_id, entry.object_repr, entry.actor_label) == (str(opened.pk), str(stored), "rita")
    assert entry.before == {"status": "open"}
    lease = json.loads(json.dumps(claimed.lease_expires_at, cls=DjangoJSONEncoder))
    assert entry.after == {"status": "claimed", "claimed_by": "rita", "lease_expires_at": lease}


def test_claim_next_answers_with_its_agent_and_version_whole(make_ticket, version, reviewer):
    """The claim reads only the agent's and version's fields its answer shows; any other loads on use."""
    version.notes = "retrained on the March tickets"
    version.save(update_fields=["notes"])
    opened = make_ticket(version=version.version)
    claimed = ticket_claim_next(reviewer=reviewer)
    assert claimed.pk == opened.pk
    assert (claimed.agent.slug, claimed.version.version) == ("claims-triage", "1.4.0")
    assert claimed.agent.owner_team == version.agent.owner_team
    assert (claimed.version.notes, claimed.version.agent_id) == ("retrained on the March tickets", version.agent_id)


def test_claim_next_of_a_lapsed_claim_records_the_lapse_then_the_claim(make_ticket, reviewer, reviewer2):
    held = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    EscalationTicket.objects.filter(pk=held.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    taken = ticket_claim_next(reviewer=reviewer2)
    assert (taken.pk, taken.claimed_by.username, taken.agent.slug) == (held.pk, "ravi", held.agent.slug)
    kinds = list(TicketEvent.objects.filter(ticket=held).order_by("at", "id").values_list("kind", "actor__username"))
    assert kinds == [("opened", "olivia"), ("claimed", "rita"), ("lease_expired", None), ("claimed", "ravi")]
    actions = list(AuditEntry.objects.filter(object_id=str(held.pk)).order_by("id").values_list("action", flat=True))
    assert actions == ["ticket.opened", "ticket.claimed", "ticket.lease_expired", "ticket.claimed"]
    # Every column of both rows, so that PostgreSQL's one statement and SQLite's step-by-step path
    # (the same test on each database) are held to the same records.
    lapse, claim = TicketEvent.objects.filter(ticket=held).order_by("id")[2:]
    assert (lapse.kind, lapse.actor_id, lapse.at, lapse.detail) == ("lease_expired", None, taken.claimed_at,
                                                                      {"holder": "rita"})
    assert (claim.kind, claim.actor_id, claim.at, claim.detail) == (
        "claimed", reviewer2.pk, taken.claimed_at, {"lease_expires_at": taken.lease_expires_at.isoformat()})
    entry = AuditEntry.objects.get(action="ticket.lease_expired")
    stored = EscalationTicket.objects.get(pk=held.pk)
    assert (entry.actor_id, entry.actor_label, entry.object_type, entry.object_id, entry.object_repr) == (
        None, "system", "escalations.escalationticket", str(held.pk), str(stored))
    assert abs(entry.at - taken.claimed_at) < timedelta(seconds=1)
    assert (entry.before, entry.after) == ({"status": "claimed", "claimed_by": "rita"}, {"status": "open"})
    claimed = AuditEntry.objects.filter(action="ticket.claimed").latest("id")
    assert claimed.id > entry.id and (claimed.actor_label, claimed.before) == ("ravi", {"status": "open"})
    audit_seal()
    assert audit_verify().intact


def test_the_claim_statements_queues_are_the_claimable_rule(make_ticket, reviewer):
    now = timezone.now()
    tickets = [make_ticket() for _ in range(5)]
    for ticket, status, lease in ((tickets[1], "claimed", now + timedelta(minutes=5)),
                                  (tickets[2], "claimed", now - timedelta(minutes=5)),
                                  (tickets[3], "claimed", now), (tickets[4], "resolved", None)):
        EscalationTicket.objects.filter(pk=ticket.pk).update(status=status, claimed_by=reviewer, lease_expires_at=lease)
    by_sql = set()
    with connection.cursor() as cursor:
        for condition, params in claimable_queues_sql(now):
            cursor.execute(f"SELECT id FROM {EscalationTicket._meta.db_table} WHERE {condition}", params)  # noqa: S608
            by_sql |= {row[0] for row in cursor.fetchall()}
    assert by_sql == set(EscalationTicket.objects.filter(claimable_q(now)).values_list("pk", flat=True))
    assert by_sql == {tickets[0].pk, tickets[2].pk, tickets[3].pk}


def test_claim_sets_a_lease_and_is_audited(make_ticket, reviewer, settings):
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "CLAIM_LEASE_SECONDS": 600}
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    assert ticket.status == TicketStatus.CLAIMED and ticket.claimed_by == reviewer
    assert timedelta(seconds=590) < ticket.lease_expires_at - timezone.now() <= timedelta(seconds=600)
    entry = AuditEntry.objects.get(action="ticket.claimed")
    assert entry.object_id == str(ticket.pk) and entry.after["claimed_by"] == "rita"


def test_claiming_a_taken_ticket_names_the_holder(make_ticket, reviewer, reviewer2):
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    with pytest.raises(Conflict) as refused:
        ticket_claim(reviewer=reviewer2, ticket=ticket)
    assert "claimed by rita until" in refused.value.detail
    assert refused.value.extra["claimed_by"] == "rita"
    assert EscalationTicket.objects.get(pk=ticket.pk).claimed_by == reviewer


def test_a_lapsed_lease_can_be_claimed_by_someone_else(make_ticket, reviewer, reviewer2):
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    EscalationTicket.objects.filter(pk=ticket.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    taken = ticket_claim(reviewer=reviewer2, ticket=ticket)
    assert taken.claimed_by == reviewer2
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True))[-3:] == [
        "ticket.claimed", "ticket.lease_expired", "ticket.claimed"]


def test_renew_extends_only_the_claimants_lease(make_ticket, reviewer, reviewer2):
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    EscalationTicket.objects.filter(pk=ticket.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=5))
    renewed = ticket_renew(reviewer=reviewer, ticket=ticket)
    assert renewed.lease_expires_at > timezone.now() + timedelta(seconds=60)
    with pytest.raises(Conflict, match="claimed by rita"):
        ticket_renew(reviewer=reviewer2, ticket=ticket)


def test_release_by_claimant_or_manager_only(make_ticket, reviewer, reviewer2, manager):
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    with pytest.raises(Forbidden):
        ticket_release(actor=reviewer2, ticket=ticket)
    released = ticket_release(actor=manager, ticket=ticket)
    assert released.status == TicketStatus.OPEN and released.claimed_by is None
    entry = AuditEntry.objects.get(action="ticket.released")
    assert entry.actor_label.startswith("maya") and entry.before["claimed_by"] == "rita"
    ticket_claim(reviewer=reviewer2, ticket=ticket)
    assert ticket_release(actor=reviewer2, ticket=ticket).status == TicketStatus.OPEN
    with pytest.raises(Conflict, match="not claimed"):
        ticket_release(actor=reviewer2, ticket=ticket)


def test_removing_a_person_gives_their_claims_back_to_the_queue(make_ticket, reviewer, reviewer2):
    held = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    other = ticket_claim(reviewer=reviewer2, ticket=make_ticket())
    reviewer.delete()
    held.refresh_from_db()
    assert (held.status, held.claimed_by_id, held.lease_expires_at) == (TicketStatus.OPEN, None, None)
    last = TicketEvent.objects.filter(ticket=held).order_by("pk").last()
    assert (last.kind, last.detail["holder"], last.detail["note"]) == ("released", "rita", "rita was removed")
    entry = AuditEntry.objects.get(action="ticket.released", object_id=str(held.pk))
    assert entry.before == {"status": "claimed", "claimed_by": "rita"} and entry.after["status"] == "open"
    other.refresh_from_db()
    assert other.status == TicketStatus.CLAIMED and other.claimed_by_id == reviewer2.pk
    assert ticket_claim_next(reviewer=reviewer2).pk == held.pk
    # Their own entries stay as written (on PostgreSQL the trail refuses an UPDATE), and the chain holds.
    claimed = AuditEntry.objects.filter(action="ticket.claimed", object_id=str(held.pk)).order_by("pk").first()
    assert claimed.actor_label.startswith("rita")
    audit_seal()
    assert audit_verify().intact


def test_only_the_claimant_resolves(make_ticket, reviewer, reviewer2):
    ticket = make_ticket()
    with pytest.raises(Conflict, match="not claimed"):
        ticket_resolve(reviewer=reviewer, ticket=ticket, label="approve")
    ticket_claim(reviewer=reviewer, ticket=ticket)
    with pytest.raises(Forbidden, match="only rita"):
        ticket_resolve(reviewer=reviewer2, ticket=ticket, label="approve")
    resolved = ticket_resolve(reviewer=reviewer, ticket=ticket, label="approve", notes="photo is clear")
    assert resolved.status == TicketStatus.RESOLVED and resolved.resolution_label == "approve"
    with pytest.raises(Conflict, match="already resolved"):
        ticket_resolve(reviewer=reviewer, ticket=ticket, label="deny")


def test_resolution_becomes_the_human_event_of_the_request(make_ticket, reviewer, version):
    ticket = make_ticket(request_key="claim-1042", version="1.4.0",
                         context={"input": "x", "attempts": [{"tool": "t"}], "segment": "motor"})
    ticket_claim(reviewer=reviewer, ticket=ticket)
    ticket_resolve(reviewer=reviewer, ticket=ticket, label="approve")
    event = Event.objects.get(agent=ticket.agent, request_key="claim-1042", kind="human")
    # A person decided: the event names no version (the ticket keeps which version escalated).
    assert (event.label, event.segment, event.version_id) == ("approve", "motor", None)
    assert ticket.version_id == version.pk
    assert AuditEntry.objects.filter(action="ticket.resolved", object_id=str(ticket.pk)).exists()


def test_ticket_takes_the_open_rollouts_version(make_ticket, agent, version, operator):
    rollout = Rollout.objects.create(agent=agent, version=version, state="active", started_by=operator)
    ticket = make_ticket()
    assert ticket.rollout_id == rollout.pk and ticket.version_id == version.pk


def test_sweep_returns_lapsed_claims_to_the_queue_once(make_ticket, reviewer):
    lapsed = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    live = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    EscalationTicket.objects.filter(pk=lapsed.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert tickets_sweep_expired_leases() == 1
    assert tickets_sweep_expired_leases() == 0
    lapsed.refresh_from_db()
    live.refresh_from_db()
    assert lapsed.status == TicketStatus.OPEN and lapsed.claimed_by is None
    assert live.status == TicketStatus.CLAIMED
    entry = AuditEntry.objects.get(action="ticket.lease_expired")
    assert entry.object_id == str(lapsed.pk) and entry.before["claimed_by"] == "rita"
    assert TicketEvent.objects.filter(ticket=lapsed, kind="lease_expired").count() == 1
    assert ticket_claim_next(reviewer=reviewer).pk == lapsed.pk


def test_sla_breach_is_notified_once(make_ticket, reviewer, settings, django_capture_on_commit_callbacks):
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "WEBHOOK_URLS": ["http://127.0.0.1:9/hook"]}
    overdue = make_ticket(priority="P1")
    make_ticket(priority="P4")
    resolved = ticket_claim(reviewer=reviewer, ticket=make_ticket(priority="P1"))
    ticket_resolve(reviewer=reviewer, ticket=resolved, label="deny")
    EscalationTicket.objects.filter(priority="P1").update(due_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks() as callbacks:
        assert tickets_notify_sla_breaches() == 1
    webhooks = [c for c in callbacks if "deliver_webhook" in repr(c.__code__.co_names)]
    assert len(webhooks) == 1
    overdue.refresh_from_db()
    assert overdue.sla_breach_notified_at is not None
    with django_capture_on_commit_callbacks() as callbacks:
        assert tickets_notify_sla_breaches() == 0
    assert callbacks == []


def test_the_queue_query_and_the_pages_agree_on_what_may_be_taken(make_ticket, reviewer):
    now = timezone.now()
    tickets = [make_ticket() for _ in range(5)]
    EscalationTicket.objects.filter(pk=tickets[1].pk).update(status=TicketStatus.CLAIMED, claimed_by=reviewer,
                                                             lease_expires_at=now + timedelta(minutes=5))
    EscalationTicket.objects.filter(pk=tickets[2].pk).update(status=TicketStatus.CLAIMED, claimed_by=reviewer,
                                                             lease_expires_at=now - timedelta(minutes=5))
    EscalationTicket.objects.filter(pk=tickets[3].pk).update(status=TicketStatus.CLAIMED, claimed_by=reviewer,
                                                             lease_expires_at=now)
    EscalationTicket.objects.filter(pk=tickets[4].pk).update(status=TicketStatus.RESOLVED)
    by_query = set(EscalationTicket.objects.filter(claimable_q(now)).values_list("pk", flat=True))
    by_rule = {t.pk for t in EscalationTicket.objects.all() if is_claimable(t, now)}
    assert by_query == by_rule == {tickets[0].pk, tickets[2].pk, tickets[3].pk}
