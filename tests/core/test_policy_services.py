"""Every service that changes state checks the policy: a person without the role is refused by the
service itself, whatever page or endpoint called it (the view's check is not the only guard)."""
import inspect
from datetime import timedelta

import pytest
from django.utils import timezone

from agents import services as agent_services
from agents.models import AgentVersion
from escalations import services as ticket_services
from escalations.models import EscalationTicket, TicketStatus
from rolloutops.exceptions import Forbidden
from rolloutops.models import AuditEntry
from rollouts import promotions
from rollouts import services as rollout_services
from rollouts.models import PromotionRequest, StageMode
from telemetry import services as telemetry_services
from tests.factories import UserFactory
from tests.telemetry.factories import rollout_with_history

pytestmark = pytest.mark.django_db

# The services that change state, each with the keyword its acting person goes by.
SERVICES = {
    agent_services.agent_register: "actor", agent_services.version_add: "actor",
    agent_services.evaluation_record: "actor", agent_services.checklist_item_add: "actor",
    agent_services.production_change: "actor", rollout_services.production_revert: "actor",
    rollout_services.rollout_start: "actor", rollout_services.rollout_plan_update: "actor",
    rollout_services.rollout_pause: "actor", rollout_services.rollout_resume: "actor",
    rollout_services.rollout_rollback: "actor", rollout_services.rollout_complete: "actor",
    promotions.promotion_request: "actor", promotions.promotion_approve: "actor",
    promotions.promotion_reject: "actor", promotions.promotion_cancel: "actor",
    telemetry_services.events_ingest: "actor", telemetry_services.events_ingest_json: "actor",
    ticket_services.ticket_open: "actor", ticket_services.ticket_claim_next: "reviewer",
    ticket_services.ticket_claim: "reviewer", ticket_services.ticket_renew: "reviewer",
    ticket_services.ticket_release: "actor", ticket_services.ticket_resolve: "reviewer",
}


def test_every_service_that_takes_a_person_is_in_this_list():
    modules = (agent_services, rollout_services, promotions, telemetry_services, ticket_services)
    public = {f for m in modules for name, f in inspect.getmembers(m, inspect.isfunction)
              if f.__module__ == m.__name__ and not name.startswith("_")
              and ({"actor", "reviewer"} & set(inspect.signature(f).parameters))}
    assert public == set(SERVICES)


@pytest.fixture
def world(operator, reviewer):
    rollout = rollout_with_history(stages=(("staging", StageMode.OFF, 0), ("canary", StageMode.LIVE, 5)))
    promotion = PromotionRequest.objects.create(rollout=rollout, from_stage="canary", to_stage="full",
                                                requested_by=operator)
    ticket = EscalationTicket.objects.create(agent=rollout.agent, request_key="r1", reason="other", priority="P3",
                                             status=TicketStatus.CLAIMED, claimed_by=reviewer,
                                             lease_expires_at=timezone.now() + timedelta(minutes=5),
                                             due_at=timezone.now() + timedelta(hours=1))
    return {"rollout": rollout, "promotion": promotion, "ticket": ticket, "version": rollout.version}


def _arguments(service, world) -> dict:
    rollout, version = world["rollout"], world["version"]
    return {
        agent_services.agent_register: dict(slug="x", name="X", owner_team="t"),
        agent_services.version_add: dict(agent=version.agent, version="9.9.9"),
        agent_services.evaluation_record: dict(version=version, results=[{"item": "security.encryption",
                                                                           "status": "pass"}]),
        agent_services.checklist_item_add: dict(dimension="security", key="security.x", title="X"),
        agent_services.production_change: dict(agent=version.agent, to_version=version, kind="completed", reason="r"),
        rollout_services.production_revert: dict(agent=version.agent, reason="r"),
        rollout_services.rollout_start: dict(version=AgentVersion.objects.create(agent=version.agent, version="2.0")),
        rollout_services.rollout_plan_update: dict(rollout=rollout, plan=None),
        rollout_services.rollout_pause: dict(rollout=rollout, reason="r"),
        rollout_services.rollout_resume: dict(rollout=rollout, reason="r"),
        rollout_services.rollout_rollback: dict(rollout=rollout, reason="r"),
        rollout_services.rollout_complete: dict(rollout=rollout),
        promotions.promotion_request: dict(rollout=rollout),
        promotions.promotion_approve: dict(promotion=world["promotion"]),
        promotions.promotion_reject: dict(promotion=world["promotion"]),
        promotions.promotion_cancel: dict(promotion=world["promotion"]),
        telemetry_services.events_ingest: dict(events=[]),
        telemetry_services.events_ingest_json: dict(body=b'{"events": []}'),
        ticket_services.ticket_open: dict(agent=rollout.agent, request_key="r2", reason="other", priority="P3"),
        ticket_services.ticket_claim_next: dict(),
        ticket_services.ticket_claim: dict(ticket=world["ticket"]),
        ticket_services.ticket_renew: dict(ticket=world["ticket"]),
        ticket_services.ticket_release: dict(ticket=world["ticket"]),
        ticket_services.ticket_resolve: dict(ticket=world["ticket"], label="approve"),
    }[service]


@pytest.mark.parametrize("service", list(SERVICES), ids=lambda f: f.__name__)
def test_a_person_without_the_role_is_refused_by_the_service(service, world):
    nobody = UserFactory(username="nobody")
    audited = AuditEntry.objects.count()
    with pytest.raises(Forbidden, match="role"):
        service(**{SERVICES[service]: nobody}, **_arguments(service, world))
    assert AuditEntry.objects.count() == audited  # refused before anything changed
