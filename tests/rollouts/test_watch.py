"""The guardrail watch never stops and never reads silence as health: an error on one rollout pauses
that one as inconclusive and the others are still watched; a silent live stage pauses; a human
workflow without errors does not switch rollback off; full traffic bakes before completing."""
from datetime import timedelta

import pytest
from django.utils import timezone

from rolloutops.exceptions import Invalid
from rollouts.models import Rollout, RolloutStage, StageTransition
from rollouts.monitor import rollout_watch, rollouts_watch_all
from rollouts.promotions import promotion_approve, promotion_request
from rollouts.services import rollout_start
from rollouts.stages import default_plan, parse_plan
from telemetry.fold import events_fold
from telemetry.models import TrafficPeriod
from telemetry.services import events_ingest
from tests.factories import AgentVersionFactory

from .conftest import FAST_PLAN, make_ready

pytestmark = pytest.mark.django_db


def _canary(operator, manager, version=None):
    version = version or make_ready(AgentVersionFactory(), operator)
    rollout = rollout_start(actor=operator, version=version, plan=FAST_PLAN)
    for _ in range(2):  # staging → shadow (no bar) → canary
        promotion_approve(actor=manager, promotion=promotion_request(actor=operator, rollout=Rollout.objects.get(pk=rollout.pk)))
    return Rollout.objects.get(pk=rollout.pk)


def _entered_ago(rollout, delta: timedelta) -> Rollout:
    """As if the rollout had reached its stage `delta` ago: history and stage clock move back together."""
    for t in StageTransition.objects.filter(rollout=rollout):
        StageTransition.objects.filter(pk=t.pk).update(at=t.at - delta)
    for p in TrafficPeriod.objects.filter(agent=rollout.agent):
        TrafficPeriod.objects.filter(pk=p.pk).update(starts_at=p.starts_at - delta)
    Rollout.objects.filter(pk=rollout.pk).update(stage_entered_at=rollout.stage_entered_at - delta)
    return Rollout.objects.get(pk=rollout.pk)


def _events(rollout, n, *, kind="agent", error_every=0, prefix="e", at=None):
    at = (at or timezone.now()).isoformat()
    result = events_ingest(events=[
        {"agent": rollout.agent.slug, "request_key": f"{prefix}-{i}", "kind": kind, "label": "approve",
         "occurred_at": at, "latency_ms": 300, "trace": {"steps": ["lookup"]},
         "outcome": "error" if error_every and i % error_every == 0 else "ok"} for i in range(n)])
    assert not result.errors, result.errors
    events_fold()


def test_an_evaluation_error_on_one_rollout_does_not_stop_another_rollback(operator, manager, django_capture_on_commit_callbacks, settings):
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "WEBHOOK_URLS": ["http://127.0.0.1:9/hook"]}
    broken = _canary(operator, manager)
    failing = _canary(operator, manager)
    _events(broken, 50, prefix="b")
    _events(failing, 300, error_every=2, prefix="f")  # half of its requests fail
    # Odd data written before validation existed: a threshold that is not a number.
    RolloutStage.objects.filter(rollout=broken, name="canary").update(guardrails={"max_error_rate": "five percent"})
    assert broken.pk < failing.pk  # the broken one is looked at first
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outcome = rollouts_watch_all()
    assert outcome["rolled_back"] == 1 and outcome["errors"] == 1 and outcome["paused"] == 1
    assert Rollout.objects.get(pk=failing.pk).state == "rolled_back"
    broken = Rollout.objects.get(pk=broken.pk)
    assert broken.state == "paused"
    pause = StageTransition.objects.get(rollout=broken, action="pause")
    assert pause.automatic and pause.reason.startswith("inconclusive: the guardrails could not be evaluated (ValueError")
    assert "ValueError" in pause.evidence["error"]
    assert len(callbacks) >= 2  # the rollback and the inconclusive pause are both announced


def test_a_human_workflow_with_zero_errors_still_rolls_a_failing_canary_back(operator, manager):
    rollout = _canary(operator, manager)
    _events(rollout, 250, kind="human", prefix="h")  # the human workflow: not a single error
    _events(rollout, 300, error_every=2, prefix="a")
    assert rollouts_watch_all()["rolled_back"] == 1
    assert Rollout.objects.get(pk=rollout.pk).state == "rolled_back"


def test_a_live_stage_that_hears_nothing_is_paused_as_inconclusive(operator, manager):
    rollout = _canary(operator, manager)
    assert rollout_watch(rollout_id=rollout.pk) == "ok"  # just entered: silence is not yet a finding
    _entered_ago(rollout, timedelta(seconds=601))
    assert rollout_watch(rollout_id=rollout.pk) == "paused"
    rollout = Rollout.objects.get(pk=rollout.pk)
    assert rollout.state == "paused"
    pause = rollout.transitions.get(action="pause")
    assert pause.automatic and pause.reason.startswith("inconclusive: no agent events in canary")


def test_events_that_stop_arriving_pause_the_stage(operator, manager):
    rollout = _entered_ago(_canary(operator, manager), timedelta(hours=1))
    _events(rollout, 30, at=timezone.now() - timedelta(minutes=30))
    assert rollout.stage_name == "canary" and Rollout.objects.get(pk=rollout.pk).state == "active"
    assert rollout_watch(rollout_id=rollout.pk) == "paused"
    assert "no agent events in canary for 18" in rollout.transitions.get(action="pause").reason


def test_a_stage_that_hears_from_the_agent_is_not_paused(operator, manager):
    rollout = _entered_ago(_canary(operator, manager), timedelta(hours=1))
    _events(rollout, 30, at=timezone.now() - timedelta(seconds=30))
    assert rollout_watch(rollout_id=rollout.pk) == "ok"
    assert Rollout.objects.get(pk=rollout.pk).state == "active"


def test_the_default_full_stage_bakes_a_day_on_1000_samples():
    full = default_plan()[-1]
    assert (full.name, full.traffic_percent, full.min_duration_s, full.min_samples) == ("full", 100, 24 * 3600, 1000)
    assert all(s.inconclusive_after_s == 600 for s in default_plan() if s.mode == "live")


@pytest.mark.parametrize("field,value", [
    ("max_error_rate", 0), ("max_error_rate", 1.0), ("max_escalation_rate", 1.5), ("baseline_error_rate", 0.0),
    ("max_disagreement_rate", -0.1), ("max_p95_latency_ms", 0),
])
def test_thresholds_that_cannot_be_tested_are_refused_naming_stage_and_field(field, value):
    plan = [{"name": "staging", "mode": "off"},
            {"name": "canary", "mode": "live", "traffic_percent": 5, "guardrails": {field: value}}]
    with pytest.raises(Invalid) as exc:
        parse_plan(plan)
    assert f"plan[1] (canary).guardrails.{field}" in str(exc.value.detail)


def test_the_api_refuses_an_untestable_threshold_with_422(api_client_for, operator):
    version = make_ready(AgentVersionFactory(), operator)
    plan = [{"name": "staging", "mode": "off"},
            {"name": "canary", "mode": "live", "traffic_percent": 5, "guardrails": {"max_error_rate": 1.0}}]
    response = api_client_for(operator).post("/api/v1/rollouts", {"agent": version.agent.slug, "version": version.version,
                                                                    "plan": plan})
    assert response.status_code == 422
    assert "plan[1] (canary).guardrails.max_error_rate" in str(response.json()["detail"])
    assert not Rollout.objects.exists()
