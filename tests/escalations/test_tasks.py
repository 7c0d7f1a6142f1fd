"""The beat schedule's escalation tasks exist under their names and do their sweep."""
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from escalations.models import EscalationTicket, TicketStatus
from escalations.services import ticket_claim
from escalations.tasks import notify_sla_breaches, sweep_leases
from rolloutops.celery import app

pytestmark = pytest.mark.django_db


def test_scheduled_task_names_are_registered():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"escalations.sweep_leases", "escalations.notify_sla_breaches"} <= scheduled
    assert sweep_leases.name in app.tasks and notify_sla_breaches.name in app.tasks


def test_sweep_task_reopens_lapsed_claims(make_ticket, reviewer):
    ticket = ticket_claim(reviewer=reviewer, ticket=make_ticket())
    EscalationTicket.objects.filter(pk=ticket.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert sweep_leases() == 1
    assert EscalationTicket.objects.get(pk=ticket.pk).status == TicketStatus.OPEN


def test_sla_task_marks_breaches_once(make_ticket):
    ticket = make_ticket(priority="P1")
    EscalationTicket.objects.filter(pk=ticket.pk).update(due_at=timezone.now() - timedelta(seconds=1))
    assert notify_sla_breaches() == 1
    assert notify_sla_breaches() == 0
