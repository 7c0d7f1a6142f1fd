"""The decisions of docs/decisions.md: a two-sample test against the control that survives a control
without errors, one e-process per guardrail carried across looks and stages without counting an
event twice, lanes for late changes, each guardrail's share of the error budget on the API, segments
judged once, and the simulation harness's false-rollback rate within the budget."""
import math

import pytest

from bench import guardrails as harness
from rollouts.guardrails import BY_KEY, REGISTRY
from rollouts.models import GuardrailState, Rollout
from rollouts.monitor import rollout_watch, rollouts_watch_all

from .test_watch import _canary, _events

# --- through the watch -------------------------------------------------------------------



@pytest.mark.django_db
def test_a_candidate_worse_than_a_control_without_errors_is_rolled_back_on_the_comparison(operator, manager):
    rollout = _canary(operator, manager)
    _events(rollout, 2000, kind="human", prefix="h")  # the control: not a single error
    _events(rollout, 300, error_every=25, prefix="a")  # 4 %: under the 5 % ceiling, far worse than 0 %
    assert rollouts_watch_all()["rolled_back"] == 1
    rollout = Rollout.objects.get(pk=rollout.pk)
    assert rollout.state == "rolled_back"
    assert "Error rate vs control" in rollout.end_reason
    assert "max_error_rate:" not in rollout.end_reason


@pytest.mark.django_db
def test_a_candidate_as_good_as_a_control_without_errors_stays(operator, manager):
    rollout = _canary(operator, manager)
    _events(rollout, 2000, kind="human", prefix="h")
    _events(rollout, 300, prefix="a")
    assert rollout_watch(rollout_id=rollout.pk) == "ok"
    assert Rollout.objects.get(pk=rollout.pk).state == "active"


@pytest.mark.django_db
def test_the_watch_keeps_its_tests_between_looks_and_pages_only_read_them(operator, manager, api_client_for):
    rollout = _canary(operator, manager)
    _events(rollout, 100, prefix="a")
    assert rollout_watch(rollout_id=rollout.pk) == "ok"
    kept = GuardrailState.objects.get(rollout=rollout)
    body = api_client_for(operator).get(f"/api/v1/rollouts/{rollout.pk}/guardrails").json()
    assert GuardrailState.objects.get(rollout=rollout).version == kept.version  # a read changes nothing
    assert body["error_budget"] == 0.01 and "equal shares" in body["budget_rule"]
    by_name = {g["name"]: g for g in body["guardrails"]}
    assert set(by_name) == {g.key for g in REGISTRY}
    assert sum(g["alpha"] for g in body["guardrails"]) == pytest.approx(0.01)
    assert all(g["share"] == pytest.approx(0.2) for g in body["guardrails"])
    assert by_name["max_error_rate"]["boundary"] == pytest.approx(math.log(1 / 0.002))
    assert by_name["baseline_error_rate"]["test"] == "vs-control"
    # A second look with the same counts adds no evidence: events are counted once.
    before = by_name["max_error_rate"]["statistic"]
    rollout_watch(rollout_id=rollout.pk)
    again = api_client_for(operator).get(f"/api/v1/rollouts/{rollout.pk}/guardrails").json()
    assert {g["name"]: g for g in again["guardrails"]}["max_error_rate"]["statistic"] == pytest.approx(before, abs=1e-3)
    assert GuardrailState.objects.get(rollout=rollout).version == kept.version + 1


@pytest.mark.django_db
def test_a_plan_can_allow_the_candidate_some_margin_over_the_control(api_client_for, operator):
    from tests.factories import AgentVersionFactory

    from .conftest import make_ready
    version = make_ready(AgentVersionFactory(), operator)
    plan = [{"name": "staging", "mode": "off"},
            {"name": "canary", "mode": "live", "traffic_percent": 5, "guardrails": {"max_error_rate_increase": 0.25}}]
    ok = api_client_for(operator).post("/api/v1/rollouts", {"agent": version.agent.slug, "version": version.version, "plan": plan})
    assert ok.status_code == 201, ok.content
    assert ok.json()["plan"][1]["guardrails"]["max_error_rate_increase"] == 0.25
    plan[1]["guardrails"]["max_error_rate_increase"] = -1
    bad = api_client_for(operator).post("/api/v1/rollouts", {"agent": version.agent.slug, "version": version.version, "plan": plan})
    assert bad.status_code == 422 and "max_error_rate_increase" in str(bad.json()["detail"])


# --- the harness -------------------------------------------------------------------------


def test_the_harness_false_rollback_rate_is_within_the_budget_on_a_small_seeded_run():
    result = harness.main(["--runs", "60", "--seed", "11", "--json"])
    # The exact 95 % interval of the observed rate must reach down to the budget (or the rate is below it).
    assert result["false_rollback_rate"] <= 0.01 or result["false_rollback_upper_95"] >= 0.01
    assert result["false_rollback_rate"] <= 0.05
    # And it detects: a collapse within minutes, a doubling within the canary.
    assert result["detection"]["2->20"]["median_min"] < 10
    assert result["detection"]["2->4"]["median_min"] < 120
    assert result["naive"]["false_rollback_rate"] > 0.5  # the rule it replaces
    assert BY_KEY["baseline_error_rate"].test == "vs-control"


@pytest.mark.django_db
def test_segments_are_provisional_until_the_shadow_stabilizes_then_judged_once(ready_version, operator, manager, client):
    from datetime import timedelta

    from rollouts.promotions import PromotionRefused, promotion_approve, promotion_request
    from rollouts.services import rollout_start

    from .test_guardrails import _pairs
    plan = [{"name": "staging", "mode": "off"},
            {"name": "shadow", "mode": "shadow", "agreement_bar": 0.8, "min_duration_s": 3600},
            {"name": "full", "mode": "live", "traffic_percent": 100}]
    rollout = rollout_start(actor=operator, version=ready_version, plan=plan)
    promotion_approve(actor=manager, promotion=promotion_request(actor=operator, rollout=rollout))
    rollout = Rollout.objects.get(pk=rollout.pk)
    _pairs(rollout, {"retail": (900, 890), "corporate": (60, 36)})
    # Before stabilization: shown as provisional, never announced, never a final verdict.
    assert rollout_watch(rollout_id=rollout.pk) == "ok"
    assert Rollout.objects.get(pk=rollout.pk).flagged_notified == []
    with pytest.raises(PromotionRefused) as exc:
        promotion_request(actor=operator, rollout=rollout)
    assert any("segments are judged once" in u and "corporate" in u for u in exc.value.unmet)
    client.force_login(operator)
    assert "provisional" in client.get(f"/rollouts/{rollout.pk}/shadow/").content.decode()
    # Stabilized: judged once, kept, announced.
    Rollout.objects.filter(pk=rollout.pk).update(stage_entered_at=rollout.stage_entered_at - timedelta(hours=2))
    rollout_watch(rollout_id=rollout.pk)
    assert Rollout.objects.get(pk=rollout.pk).flagged_notified == ["corporate"]
    verdict = GuardrailState.objects.get(rollout=rollout).segments["shadow"]
    assert verdict["flagged"] == ["corporate"] and verdict["pairs"] == 960
    assert "provisional" not in client.get(f"/rollouts/{rollout.pk}/shadow/").content.decode()
    # The judgement stands at every later look.
    GuardrailState.objects.filter(rollout=rollout).update(state={})
    with pytest.raises(PromotionRefused) as exc:
        promotion_request(actor=operator, rollout=Rollout.objects.get(pk=rollout.pk))
    assert "systematic discrepancy flagged in segment(s): corporate" in exc.value.unmet


@pytest.mark.django_db
def test_the_rollout_page_says_when_the_watch_has_not_looked_yet_and_draws_the_evidence_once_it_has(operator, manager, client):
    rollout = _canary(operator, manager)
    _events(rollout, 100, prefix="a")
    client.force_login(operator)
    page = client.get(f"/rollouts/{rollout.pk}/").content.decode()
    assert "The watch has not looked at this rollout yet" in page
    rollout_watch(rollout_id=rollout.pk)
    page = client.get(f"/rollouts/{rollout.pk}/").content.decode()
    assert "the statistic that decides" in page and "Error rate (evidence)" in page
