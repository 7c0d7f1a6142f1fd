"""seed_demo builds the world the README promises: every stage, a flagged segment, a rollback, a queue."""
import pytest
from django.core.management import call_command

from agents.models import Agent, AgentVersion
from agents.readiness import version_readiness
from escalations.models import EscalationTicket
from rollouts.models import PromotionRequest, Rollout
from telemetry.selectors import rollout_discrepancy, stage_metrics

pytestmark = pytest.mark.django_db


def test_seed_demo_builds_a_living_world(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "Seeded 6 agents" in out and "demo-pass-2026" in out
    by_agent = {r.agent.slug: r for r in Rollout.objects.select_related("agent").order_by("created_at")}
    claims = Rollout.objects.filter(agent__slug="claims-triage").order_by("created_at")
    assert [(r.version.version, r.state, r.stage_name) for r in claims] == [
        ("2.3.0", "completed", "full"), ("2.4.0", "active", "canary")]
    assert claims[1].incumbent_version.version == "2.3.0"
    assert Agent.objects.get(slug="claims-triage").production_version.version == "2.3.0"
    canary = stage_metrics(rollout_id=claims[1].pk, stage="canary")
    assert canary.candidate.requests == 240 and canary.control.requests == 720  # 2.4.0 against 2.3.0 at once
    assert rollout_discrepancy(rollout_id=claims[1].pk, against="incumbent")["pairs"] == 880
    assert by_agent["refund-assistant"].stage_name == "expand-25"
    assert by_agent["invoice-coder"].stage_name == "staging"
    fraud = by_agent["fraud-alert-summarizer"]
    assert fraud.state == "rolled_back" and fraud.end_reason.startswith("automatic rollback: Error rate")
    assert fraud.transitions.get(action="rollback").automatic is True
    kyc = rollout_discrepancy(rollout_id=by_agent["kyc-document-checker"].pk)
    assert kyc["flagged_segments"] == ["passport-non-eu"]
    assert PromotionRequest.objects.filter(rollout=by_agent["support-router"], status="pending").exists()
    invoice = version_readiness(version=AgentVersion.objects.get(agent__slug="invoice-coder"))
    assert not invoice.ready and any("security.least_privilege" in f for f in invoice.failing)
    assert version_readiness(version=AgentVersion.objects.get(agent__slug="refund-assistant")).ready
    assert EscalationTicket.objects.filter(status="open").count() >= 8
    assert EscalationTicket.objects.filter(status="claimed").count() == 2


def test_seed_demo_twice_seeds_nothing_more(capsys):
    call_command("seed_demo")
    call_command("seed_demo")
    assert "nothing seeded" in capsys.readouterr().out
    assert Rollout.objects.count() == 7
