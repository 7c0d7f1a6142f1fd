"""The agents API: register, versions, evaluations, readiness; roles and validation."""
import pytest

from agents.models import Agent, Evaluation, EvaluationResult
from rolloutops.models import AuditEntry
from rollouts.models import Rollout
from tests.agents.conftest import all_pass_results, healthy_telemetry

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(api_client_for, operator):
    return api_client_for(operator, "user")


def test_operator_registers_agent_adds_version_and_reads_it(ops):
    response = ops.post("/api/v1/agents", {"slug": "claims-triage", "name": "Claims triage", "owner_team": "claims-ops"})
    assert response.status_code == 201
    assert response.json()["slug"] == "claims-triage"

    response = ops.post("/api/v1/agents/claims-triage/versions",
                        {"version": "1.4.0", "notes": "first", "sla": {"p95_latency_ms": 1500, "max_error_rate": 0.01}})
    assert response.status_code == 201
    assert response.json()["sla"] == {"p95_latency_ms": 1500, "max_error_rate": 0.01}

    listing = ops.get("/api/v1/agents").json()
    assert [(a["slug"], a["latest_version"]) for a in listing] == [("claims-triage", "1.4.0")]
    detail = ops.get("/api/v1/agents/claims-triage").json()
    assert detail["versions"][0]["version"] == "1.4.0"
    assert detail["versions"][0]["readiness"]["ready"] is False
    assert detail["active_rollout"] is None


def test_agent_detail_shows_the_open_rollout(ops, version, operator):
    rollout = Rollout.objects.create(agent=version.agent, version=version, stage_name="canary", traffic_percent=5,
                                     mode="live", started_by=operator)
    detail = ops.get(f"/api/v1/agents/{version.agent.slug}").json()
    assert detail["active_rollout"] == {"id": rollout.pk, "state": "active", "stage": "canary",
                                        "traffic_percent": 5.0, "version": "1.4.0"}


def test_duplicate_agent_is_409(ops):
    body = {"slug": "a1", "name": "A", "owner_team": "t"}
    assert ops.post("/api/v1/agents", body).status_code == 201
    response = ops.post("/api/v1/agents", body)
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


def test_missing_field_is_422(ops):
    response = ops.post("/api/v1/agents", {"slug": "a1"})
    assert response.status_code == 422
    assert Agent.objects.count() == 0


def test_recording_an_evaluation_returns_it_with_the_new_readiness(ops, version):
    healthy_telemetry(version)
    response = ops.post("/api/v1/agents/claims-triage/versions/1.4.0/evaluations",
                        {"results": all_pass_results(), "notes": "quarterly review"})
    assert response.status_code == 201
    body = response.json()
    assert body["evaluation"]["evaluated_by"] == "olivia"
    assert len(body["evaluation"]["results"]) == 14
    assert body["readiness"]["ready"] is True
    assert AuditEntry.objects.filter(action="evaluation.recorded", object_id=str(body["evaluation"]["id"])).count() == 1


def test_readiness_endpoint_shape(api_client_for, reviewer, version):
    response = api_client_for(reviewer, "user").get("/api/v1/agents/claims-triage/versions/1.4.0/readiness")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is False
    assert set(body["dimensions"]) == {"reliability", "observability", "fallback", "security", "performance"}
    security = body["dimensions"]["security"]
    assert security["status"] == "fail"
    assert "security.encryption: not evaluated" in security["failing"]
    assert {"status", "failing", "items", "automatic"} <= set(security)
    assert body["dimensions"]["performance"]["automatic"][0]["verdict"] == "unknown"


def test_unknown_item_is_422_naming_index_and_item_and_stores_nothing(ops, version):
    response = ops.post("/api/v1/agents/claims-triage/versions/1.4.0/evaluations", {"results": [
        {"item": "security.encryption", "status": "pass"}, {"item": "security.nope", "status": "pass"}]})
    assert response.status_code == 422
    body = response.json()
    assert "security.nope" in body["detail"]
    assert (body["index"], body["item"]) == (1, "security.nope")
    assert not Evaluation.objects.exists() and not EvaluationResult.objects.exists()


def test_bad_status_is_422_and_stores_nothing(ops, version):
    response = ops.post("/api/v1/agents/claims-triage/versions/1.4.0/evaluations",
                        {"results": [{"item": "security.encryption", "status": "probably"}]})
    assert response.status_code == 422
    assert "pass, fail or na" in response.json()["detail"]
    assert not Evaluation.objects.exists()
    assert not AuditEntry.objects.filter(action="evaluation.recorded").exists()


def test_missing_agent_or_version_is_404(ops, version):
    body = {"results": [{"item": "security.encryption", "status": "pass"}]}
    response = ops.post("/api/v1/agents/ghost/versions/1.0.0/evaluations", body)
    assert response.status_code == 404
    assert "ghost" in response.json()["detail"]
    assert ops.post("/api/v1/agents/claims-triage/versions/9.9.9/evaluations", body).status_code == 404
    assert ops.get("/api/v1/agents/ghost").status_code == 404
    assert ops.get("/api/v1/agents/ghost/versions/1.0.0/readiness").status_code == 404
    assert not Evaluation.objects.exists()


@pytest.mark.parametrize("who", ["reviewer", "manager"])
def test_only_operators_record_evaluations(request, api_client_for, version, who):
    client = api_client_for(request.getfixturevalue(who), "user")
    response = client.post("/api/v1/agents/claims-triage/versions/1.4.0/evaluations",
                           {"results": [{"item": "security.encryption", "status": "pass"}]})
    assert response.status_code == 403
    assert not Evaluation.objects.exists()


def test_operator_token_without_user_scope_cannot_record_evaluations(api_client_for, operator, version):
    client = api_client_for(operator, "events:write")
    response = client.post("/api/v1/agents/claims-triage/versions/1.4.0/evaluations",
                           {"results": [{"item": "security.encryption", "status": "pass"}]})
    assert response.status_code == 403
    assert "scope" in response.json()["detail"]
    assert not Evaluation.objects.exists()


def test_reviewer_cannot_register_agents_but_can_list_them(api_client_for, reviewer, version):
    client = api_client_for(reviewer, "user")
    assert client.post("/api/v1/agents", {"slug": "x", "name": "X", "owner_team": "t"}).status_code == 403
    assert client.get("/api/v1/agents").status_code == 200


def test_checklist_lists_and_operator_adds_items(ops, api_client_for, manager):
    assert len(ops.get("/api/v1/checklist").json()) == 14
    response = ops.post("/api/v1/checklist", {"dimension": "security", "key": "security.pii", "title": "PII redacted"})
    assert response.status_code == 201
    assert response.json()["key"] == "security.pii"
    assert api_client_for(manager, "user").post(
        "/api/v1/checklist", {"dimension": "security", "key": "security.x", "title": "x"}).status_code == 403


def test_version_detail_carries_full_readiness(ops, version):
    body = ops.get("/api/v1/agents/claims-triage/versions/1.4.0").json()
    assert body["version"] == "1.4.0"
    assert "dimensions" in body["readiness"]


def test_openapi_document_lists_the_agents_endpoints(ops):
    paths = ops.get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/agents", "/api/v1/agents/{slug}", "/api/v1/agents/{slug}/versions",
            "/api/v1/agents/{slug}/versions/{version}/evaluations",
            "/api/v1/agents/{slug}/versions/{version}/readiness", "/api/v1/checklist"} <= set(paths)


def test_bad_sla_in_version_body_is_422_naming_the_field(ops, version):
    response = ops.post("/api/v1/agents/claims-triage/versions", {"version": "2.0.0", "sla": {"max_error_rate": 3}})
    assert response.status_code == 422
    assert "max_error_rate" in str(response.json()["detail"])
