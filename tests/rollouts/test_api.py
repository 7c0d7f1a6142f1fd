"""The rollouts API as a script drives it: staging to full, refusals with reasons, roles."""
import pytest
from django.utils import timezone

from rollouts.models import Rollout
from telemetry.fold import events_fold

from .conftest import FAST_PLAN

pytestmark = pytest.mark.django_db


def report_healthy_decisions(client, agent: str, stage: str, n: int = 20) -> None:
    """What an agent's runtime sends while a live stage runs: without it no gate opens."""
    now = timezone.now().isoformat()
    events = [{"agent": agent, "request_key": f"{stage}-{i}", "kind": "agent", "label": "approve", "outcome": "ok",
               "latency_ms": 200, "occurred_at": now, "trace": {"steps": ["lookup"]}} for i in range(n)]
    response = client.post("/api/v1/events", {"events": events})
    assert response.status_code == 200 and not response.json()["errors"], response.content
    events_fold()


def test_script_drives_a_rollout_from_staging_to_full(api_client_for, operator, manager, ready_version):
    ops = api_client_for(operator, "user")
    mgr = api_client_for(manager, "user")
    runtime = api_client_for(operator, "route:read,events:write")
    created = ops.post("/api/v1/rollouts", {"agent": ready_version.agent.slug, "version": ready_version.version,
                                             "plan": FAST_PLAN})
    assert created.status_code == 201, created.content
    rollout_id = created.json()["id"]
    assert created.json()["stage"] == "staging" and len(created.json()["plan"]) == 7
    stages = []
    for _ in range(6):
        current = ops.get(f"/api/v1/rollouts/{rollout_id}").json()["stage"]
        if current not in ("staging", "shadow"):
            silent = ops.post(f"/api/v1/rollouts/{rollout_id}/promotions", {"reason": "next"})
            assert silent.status_code == 409 and any("no data" in u for u in silent.json()["unmet"])
            report_healthy_decisions(runtime, ready_version.agent.slug, current)
        requested = ops.post(f"/api/v1/rollouts/{rollout_id}/promotions", {"reason": "next"})
        assert requested.status_code == 201, requested.content
        approved = mgr.post(f"/api/v1/promotions/{requested.json()['id']}/approve", {"comment": "ok"})
        assert approved.status_code == 200, approved.content
        assert approved.json()["status"] == "approved"
        stages.append(ops.get(f"/api/v1/rollouts/{rollout_id}").json()["stage"])
    assert stages == ["shadow", "canary", "expand-10", "expand-25", "expand-50", "full"]
    shown = ops.get(f"/api/v1/rollouts/{rollout_id}").json()
    assert shown["traffic_percent"] == 100
    assert [h["action"] for h in shown["history"]] == ["start"] + ["promote"] * 6
    answer = runtime.get("/api/v1/route", {"agent": ready_version.agent.slug, "key": "r-1"})
    assert answer.status_code == 200 and answer.json()["handler"] == "agent"
    last = ops.post(f"/api/v1/rollouts/{rollout_id}/promotions")
    assert last.status_code == 409 and any("last stage" in u for u in last.json()["unmet"])


def test_refused_promotion_is_409_with_every_unmet_condition(api_client_for, operator, ready_version):
    ops = api_client_for(operator, "user")
    plan = [{"name": "staging", "mode": "off", "min_duration_s": 3600, "min_samples": 10},
            {"name": "full", "mode": "live", "traffic_percent": 100}]
    rollout_id = ops.post("/api/v1/rollouts", {"agent": ready_version.agent.slug, "version": ready_version.version,
                                                "plan": plan}).json()["id"]
    response = ops.post(f"/api/v1/rollouts/{rollout_id}/promotions")
    assert response.status_code == 409
    body = response.json()
    assert len(body["unmet"]) == 2 and "detail" in body


def test_operator_cannot_approve_and_reviewer_cannot_start(api_client_for, operator, operator2, reviewer, fast_rollout):
    promotion = api_client_for(operator, "user").post(f"/api/v1/rollouts/{fast_rollout.pk}/promotions").json()
    assert api_client_for(operator2, "user").post(f"/api/v1/promotions/{promotion['id']}/approve").status_code == 403
    started = api_client_for(reviewer, "user").post("/api/v1/rollouts", {"agent": fast_rollout.agent.slug,
                                                                         "version": fast_rollout.version.version})
    assert started.status_code == 403


def test_manual_rollback_pause_resume_need_a_reason(api_client_for, operator, fast_rollout):
    ops = api_client_for(operator, "user")
    assert ops.post(f"/api/v1/rollouts/{fast_rollout.pk}/pause", {}).status_code == 422
    assert ops.post(f"/api/v1/rollouts/{fast_rollout.pk}/pause", {"reason": "vendor outage"}).json()["state"] == "paused"
    assert ops.post(f"/api/v1/rollouts/{fast_rollout.pk}/resume", {"reason": "vendor back"}).json()["state"] == "active"
    rolled = ops.post(f"/api/v1/rollouts/{fast_rollout.pk}/rollback", {"reason": "bad answers"})
    assert rolled.json()["state"] == "rolled_back" and rolled.json()["traffic_percent"] == 0
    again = ops.post(f"/api/v1/rollouts/{fast_rollout.pk}/resume", {"reason": "oops"})
    assert again.status_code == 409


def test_bad_plan_and_unknown_version_are_clear_errors(api_client_for, operator, ready_version):
    ops = api_client_for(operator, "user")
    bad = ops.post("/api/v1/rollouts", {"agent": ready_version.agent.slug, "version": ready_version.version,
                                         "plan": [{"name": "canary", "mode": "live", "traffic_percent": 5}]})
    assert bad.status_code == 422 and "staging" in str(bad.json()["detail"])
    assert not Rollout.objects.exists()
    missing = ops.post("/api/v1/rollouts", {"agent": ready_version.agent.slug, "version": "9.9.9"})
    assert missing.status_code == 404 and "9.9.9" in missing.json()["detail"]
    assert ops.get("/api/v1/rollouts/999999").status_code == 404


def test_route_needs_route_scope_and_knows_unknown_agents(api_client_for, operator, fast_rollout):
    events_only = api_client_for(operator, "events:write")
    assert events_only.get("/api/v1/route", {"agent": fast_rollout.agent.slug, "key": "k"}).status_code == 403
    runtime = api_client_for(operator, "route:read")
    assert runtime.get("/api/v1/route", {"agent": "ghost", "key": "k"}).status_code == 404
    answer = runtime.get("/api/v1/route", {"agent": fast_rollout.agent.slug, "key": "k"}).json()
    # Staging changes no routing: the incumbent (people, for a first version) acts.
    assert answer == {"handler": "human", "version": None, "shadow": False, "shadow_version": None,
                      "rollout": fast_rollout.pk, "stage": "staging", "traffic_percent": 0.0,
                      "bucket": answer["bucket"], "state": "active"}


def test_guardrails_endpoint_reports_each_metric(api_client_for, operator, fast_rollout):
    response = api_client_for(operator, "user").get(f"/api/v1/rollouts/{fast_rollout.pk}/guardrails")
    assert response.status_code == 200
    assert response.json()["stage"] == "staging" and response.json()["healthy"] is True


def test_out_of_range_numbers_are_422_not_500(api_client_for, operator):
    ops = api_client_for(operator, "user")
    assert ops.get("/api/v1/rollouts", {"offset": -5}).status_code == 422
    assert ops.get("/api/v1/rollouts", {"limit": 10**12}).status_code == 422
    assert ops.get("/api/v1/promotions", {"rollout": 142391953296381492330496}).status_code == 422
    assert ops.get("/api/v1/rollouts/99999999999999999999999").status_code in (404, 422)


def test_route_for_a_malformed_agent_name_is_404(api_client_for, operator):
    runtime = api_client_for(operator, "route:read")
    response = runtime.get("/api/v1/route", {"agent": "¡\x98bÄ", "key": "k"})
    assert response.status_code == 404 and "detail" in response.json()
