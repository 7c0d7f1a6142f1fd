"""examples/support_runtime.py against the live server: every agent of the routing snapshot gets
traffic; who acts follows the route (people, the incumbent version, the candidate), the shadow
candidate decides beside the incumbent, people review a share, low confidence opens a ticket."""
import json

import pytest

from agents.models import Agent
from escalations.models import EscalationTicket
from rolloutops.tokens import token_issue
from rollouts.models import StageMode
from telemetry.fold import events_fold
from telemetry.models import Arm, Event
from telemetry.selectors import rollout_discrepancy
from tests.factories import AgentVersionFactory, UserFactory
from tests.telemetry.factories import rollout_with_history

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world():
    # People act on kyc-desk's requests and its 1.0.0 runs beside them in shadow.
    shadow = rollout_with_history(version=AgentVersionFactory(agent__slug="kyc-desk", version="1.0.0"))
    # claims-desk 2.0.0 is in production and 2.1.0 takes half of its traffic.
    incumbent = AgentVersionFactory(agent__slug="claims-desk", version="2.0.0")
    Agent.objects.filter(pk=incumbent.agent_id).update(production_version=incumbent)
    candidate = AgentVersionFactory(agent=Agent.objects.get(pk=incumbent.agent_id), version="2.1.0")
    live = rollout_with_history(version=candidate, stages=(("staging", StageMode.OFF, 0),
                                                           ("canary", StageMode.LIVE, 50)))
    return shadow, live


def test_the_runtime_routes_decides_records_and_escalates(live_server, run_example, world):
    shadow, live = world
    token = token_issue(user=UserFactory(roles=["operator"]), scopes="route:read,events:write,escalations:write",
                        name="support-runtime")[1]
    out = run_example("support_runtime.py", "--url", live_server.url, "--token", token, "--all-agents",
                      "--rate", "25", "--duration", "3", "--work-ms", "0", "--review-share", "0.3",
                      "--escalate-below", "0.75", "--seed", "7")
    summary = json.loads(out.split("summary: ", 1)[1])
    assert summary["telemetry"]["rejected"] == summary["telemetry"]["failed"] == 0
    assert summary["telemetry"]["accepted"] == Event.objects.count() > 0

    # kyc-desk: people decide every request, the candidate decides each beside them.
    kyc = Event.objects.filter(agent=shadow.agent)
    people = set(kyc.filter(kind="human", arm=Arm.CONTROL).values_list("request_key", flat=True))
    candidate = set(kyc.filter(kind="agent", version=shadow.version, arm=Arm.CANDIDATE)
                    .values_list("request_key", flat=True))
    assert people and people == candidate
    events_fold()
    report = rollout_discrepancy(rollout_id=shadow.pk)
    assert report["against"] == "human" and report["pairs"] == len(people)

    # claims-desk: the candidate and the incumbent version act, each on its own keys, people on none.
    claims = Event.objects.filter(agent=live.agent, kind="agent")
    by_arm = {arm: set(claims.filter(arm=arm).values_list("request_key", flat=True))
              for arm in (Arm.CANDIDATE, Arm.CONTROL)}
    assert by_arm[Arm.CANDIDATE] and by_arm[Arm.CONTROL] and not by_arm[Arm.CANDIDATE] & by_arm[Arm.CONTROL]
    assert set(claims.filter(arm=Arm.CANDIDATE).values_list("version__version", flat=True)) == {"2.1.0"}
    assert set(claims.filter(arm=Arm.CONTROL).values_list("version__version", flat=True)) == {"2.0.0"}
    assert not Event.objects.filter(agent=live.agent, kind="human", arm=Arm.CONTROL).exists()
    reviewed = Event.objects.filter(agent=live.agent, kind="human", arm=Arm.LABEL).count()
    assert 0 < reviewed < claims.count()
    assert all(e.trace and len(e.trace["steps"]) == 2 for e in claims)

    # Low confidence: a ticket with what the agent tried, and the decision recorded as escalated.
    ticket = EscalationTicket.objects.filter(agent=live.agent).first()
    assert ticket is not None and ticket.status == "open" and ticket.reason == "low_confidence"
    assert len(ticket.context["attempts"]) == 2 and ticket.context["input"].startswith("request ")
    assert claims.get(request_key=ticket.request_key).outcome == "escalated"
    assert EscalationTicket.objects.filter(agent=live.agent).count() == summary["counts"]["escalations"]


def test_a_failing_candidate_fails_and_the_version_in_production_does_not(live_server, run_example, world):
    _, live = world
    token = token_issue(user=UserFactory(roles=["operator"]), scopes="route:read,events:write,escalations:write",
                        name="support-runtime")[1]
    run_example("support_runtime.py", "--url", live_server.url, "--token", token, "--agent", "claims-desk",
                "--rate", "40", "--duration", "2", "--work-ms", "0", "--candidate-error-rate", "1", "--seed", "3")
    claims = Event.objects.filter(agent=live.agent, kind="agent")
    candidate = set(claims.filter(arm=Arm.CANDIDATE).values_list("outcome", "label"))
    assert candidate == {("error", "error")}
    incumbent = list(claims.filter(arm=Arm.CONTROL).values_list("outcome", flat=True))
    assert incumbent and incumbent.count("error") < len(incumbent) / 4
    assert not Event.objects.exclude(agent=live.agent).exists()  # --agent: only the agent named
