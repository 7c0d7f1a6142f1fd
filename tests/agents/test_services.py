"""Services: registering agents and versions, recording evaluations (all or nothing), the checklist."""
import pytest

from agents.models import Agent, AgentVersion, ChecklistItem, Evaluation, EvaluationResult
from agents.services import agent_register, checklist_item_add, evaluation_record, version_add
from rolloutops.exceptions import Conflict, Invalid
from rolloutops.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_register_agent_and_version_are_audited(operator):
    agent = agent_register(actor=operator, slug="claims-triage", name="Claims triage", owner_team="claims-ops")
    version = version_add(actor=operator, agent=agent, version="1.4.0", sla_p95_latency_ms=1500)
    assert version.sla_p95_latency_ms == 1500
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == ["agent.registered", "version.added"]


def test_duplicate_slug_and_version_are_conflicts(operator):
    agent = agent_register(actor=operator, slug="a1", name="A", owner_team="t")
    with pytest.raises(Conflict):
        agent_register(actor=operator, slug="a1", name="A again", owner_team="t")
    version_add(actor=operator, agent=agent, version="1.0.0")
    with pytest.raises(Conflict):
        version_add(actor=operator, agent=agent, version="1.0.0")
    assert Agent.objects.count() == 1 and AgentVersion.objects.count() == 1


def test_bad_slug_and_sla_are_invalid(operator):
    with pytest.raises(Invalid):
        agent_register(actor=operator, slug="Not A Slug", name="A", owner_team="t")
    agent = agent_register(actor=operator, slug="ok", name="A", owner_team="t")
    with pytest.raises(Invalid):
        version_add(actor=operator, agent=agent, version="1.0", sla_max_error_rate=1.5)


def test_evaluation_is_one_audit_entry_with_its_results(version, operator):
    evaluation = evaluation_record(actor=operator, version=version, results=[
        {"item": "security.encryption", "status": "pass", "evidence": "TLS 1.3 everywhere"}])
    entry = AuditEntry.objects.get(action="evaluation.recorded")
    assert entry.object_id == str(evaluation.pk)
    assert entry.after["results"] == [{"item": "security.encryption", "status": "pass", "evidence": "TLS 1.3 everywhere"}]
    assert entry.actor_label.startswith("olivia")


def test_unknown_item_stores_nothing_and_names_index_and_item(version, operator):
    with pytest.raises(Invalid) as err:
        evaluation_record(actor=operator, version=version, results=[
            {"item": "security.encryption", "status": "pass"}, {"item": "security.vibes", "status": "pass"}])
    assert err.value.extra == {"index": 1, "item": "security.vibes"}
    assert "security.vibes" in err.value.detail
    assert not Evaluation.objects.exists() and not EvaluationResult.objects.exists()
    assert not AuditEntry.objects.filter(action="evaluation.recorded").exists()


def test_bad_status_stores_nothing(version, operator):
    with pytest.raises(Invalid) as err:
        evaluation_record(actor=operator, version=version, results=[{"item": "security.encryption", "status": "maybe"}])
    assert "pass, fail or na" in err.value.detail
    assert not Evaluation.objects.exists()


def test_checklist_item_add_appends_to_its_dimension(operator):
    item = checklist_item_add(actor=operator, dimension="security", key="security.pii_redaction", title="PII redacted")
    assert item.position > ChecklistItem.objects.filter(dimension="security").exclude(pk=item.pk).order_by("-position")[0].position
    with pytest.raises(Conflict):
        checklist_item_add(actor=operator, dimension="security", key="security.pii_redaction", title="again")
    with pytest.raises(Invalid):
        checklist_item_add(actor=operator, dimension="vibes", key="vibes.x", title="x")
