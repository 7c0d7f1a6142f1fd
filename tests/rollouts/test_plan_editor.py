"""The plan editor of the rollout page: rows to a plan and back (pure), and the page, which saves
through the same rules as PUT /api/v1/rollouts/{id}/plan and shows their problems beside the fields."""
import pytest

from rollouts import plan_form
from rollouts.models import RolloutState
from rollouts.services import rollout_plan_update
from rollouts.stages import DEFAULT_GUARDRAILS, StagePlan, default_plan, parse_plan

HX = {"HX-Request": "true"}


def post_data(rows: list[dict], keys: list[str], **extra) -> dict:
    data = {"stages": str(len(rows)), **extra}
    for i, row in enumerate(rows):
        for name in plan_form.FIELDS:
            data[f"stage-{i}-{name}"] = row[name]
        for key in keys:
            data[f"stage-{i}-guardrails.{key}"] = row["guardrails"].get(key, "")
    return data


# --- pure ------------------------------------------------------------------------------------

def test_the_default_plan_goes_through_the_form_unchanged():
    keys = plan_form.guardrail_keys(default_plan())
    rows = plan_form.rows_from_stages(default_plan())
    assert rows[2]["min_duration_h"] == "2" and rows[2]["guardrails"]["max_error_rate"] == "0.05"
    again = plan_form.rows_from_post(post_data(rows, keys), keys)
    assert parse_plan(plan_form.plan_from_rows(again)) == default_plan()


def test_guardrail_keys_come_from_the_plan_not_a_fixed_list():
    stages = [StagePlan("staging", "off"), StagePlan("canary", "live", 5, guardrails={"max_cost_per_request": 0.2})]
    assert plan_form.guardrail_keys(stages) == [*DEFAULT_GUARDRAILS, "max_cost_per_request"]


def test_hours_become_seconds_and_non_numbers_reach_the_rules_as_typed():
    row = {**plan_form.blank_row(), "name": "canary", "traffic_percent": "5", "min_duration_h": "1.5",
           "min_samples": "lots", "guardrails": {"max_error_rate": "0.03", "max_escalation_rate": ""}}
    stage = plan_form.plan_from_rows([row])[0]
    assert stage["min_duration_s"] == 5400 and stage["min_samples"] == "lots"
    assert stage["guardrails"] == {"max_error_rate": 0.03}  # empty: the default


def test_each_problem_lands_on_its_field_its_row_or_the_plan():
    problems = [
        "plan[2] (canary).traffic_percent: between 0 and 100",
        "plan[2] (canary).guardrails.max_error_rate: a rate strictly between 0 and 1 (got 2)",
        "plan[3] (eu (north)).min_duration_s: something about durations",
        "plan[1] (shadow): min_duration_s and min_samples are ≥ 0",
        "plan[4].name: required, at most 40 characters",
        "plan: only the first stage (staging) is off",
        "plan[9] (ghost).name: a row that is not on screen",
    ]
    errors = plan_form.place_errors(problems, row_count=5)
    assert errors.fields == {
        (2, "traffic_percent"): ["between 0 and 100"],
        (2, "guardrails.max_error_rate"): ["a rate strictly between 0 and 1 (got 2)"],
        (3, "min_duration_h"): ["something about durations"],
        (4, "name"): ["required, at most 40 characters"],
    }
    assert errors.rows == {1: ["min_duration_s and min_samples are ≥ 0"]}
    assert errors.plan == [problems[5], problems[6]] and errors.count() == 7


# --- the page --------------------------------------------------------------------------------

pytestmark = pytest.mark.django_db


def editor_rows(rollout):
    keys = plan_form.guardrail_keys(rollout.stages.all())
    return plan_form.rows_from_stages(rollout.stages.all()), keys


def test_operator_sees_the_editor_in_staging_and_others_do_not(client, operator, manager, fast_rollout):
    client.force_login(operator)
    html = client.get(f"/rollouts/{fast_rollout.pk}/").content.decode()
    assert 'id="plan-editor"' in html and 'aria-label="canary: traffic %"' in html
    for key in DEFAULT_GUARDRAILS:
        assert f'name="stage-2-guardrails.{key}"' in html
    client.force_login(manager)
    assert 'id="plan-editor"' not in client.get(f"/rollouts/{fast_rollout.pk}/").content.decode()
    assert client.post(f"/rollouts/{fast_rollout.pk}/plan/", {"stages": "0"}).status_code == 403


def test_saving_a_plan_updates_the_stages_in_place(client, operator, fast_rollout):
    client.force_login(operator)
    rows, keys = editor_rows(fast_rollout)
    rows[2].update(traffic_percent="2", min_duration_h="1.5")
    rows[2]["guardrails"]["max_error_rate"] = "0.03"
    response = client.post(f"/rollouts/{fast_rollout.pk}/plan/", post_data(rows, keys), headers=HX)
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<section id="plan-editor"')
    assert 'id="live-panel" hx-swap-oob="morph"' in html and "Plan saved" in html
    canary = fast_rollout.stages.get(name="canary")
    assert (canary.traffic_percent, canary.min_duration_s, canary.guardrails["max_error_rate"]) == (2, 5400, 0.03)


def test_a_refused_plan_comes_back_as_typed_with_each_problem_beside_its_field(client, operator, fast_rollout):
    client.force_login(operator)
    rows, keys = editor_rows(fast_rollout)
    rows[2].update(traffic_percent="150", min_duration_h="1.5")
    rows[3]["guardrails"]["max_error_rate"] = "2"
    html = client.post(f"/rollouts/{fast_rollout.pk}/plan/", post_data(rows, keys), headers=HX).content.decode()
    assert "Plan not saved: 3 problems" in html  # 150 % also makes the next stage narrow traffic
    assert 'id="stage-2-traffic_percent" name="stage-2-traffic_percent" value="150"' in html
    assert 'aria-invalid="true" aria-describedby="stage-2-traffic_percent-error"' in html
    assert '<p class="field-error" id="stage-2-traffic_percent-error">between 0 and 100</p>' in html
    assert 'id="stage-3-guardrails-max_error_rate-error">a rate strictly between 0 and 1' in html
    assert 'name="stage-2-min_duration_h" value="1.5"' in html  # what was typed, kept
    assert fast_rollout.stages.get(name="canary").traffic_percent == 5  # nothing saved
    # Without JavaScript: the whole page, 422, the same problems in place.
    plain = client.post(f"/rollouts/{fast_rollout.pk}/plan/", post_data(rows, keys))
    assert plain.status_code == 422 and "<html" in plain.content.decode() and "between 0 and 100" in plain.content.decode()


def test_rows_are_added_and_removed_before_saving(client, operator, fast_rollout):
    client.force_login(operator)
    rows, keys = editor_rows(fast_rollout)
    added = client.post(f"/rollouts/{fast_rollout.pk}/plan/", post_data(rows, keys, add="1"), headers=HX).content.decode()
    assert f'name="stages" value="{len(rows) + 1}"' in added and 'aria-label="new stage: name"' in added
    removed = client.post(f"/rollouts/{fast_rollout.pk}/plan/", post_data(rows, keys, remove="3"), headers=HX).content.decode()
    assert f'name="stages" value="{len(rows) - 1}"' in removed and 'value="expand-10"' not in removed
    assert fast_rollout.stages.count() == len(rows)  # neither saved anything


def test_the_editor_goes_once_the_rollout_leaves_staging(client, operator, fast_rollout):
    rollout_plan_update(actor=operator, rollout=fast_rollout, plan=[{"name": "staging", "mode": "off"},
                                                                    {"name": "canary", "mode": "live", "traffic_percent": 5}])
    type(fast_rollout).objects.filter(pk=fast_rollout.pk).update(stage_index=1, stage_name="canary", mode="live")
    client.force_login(operator)
    assert 'id="plan-editor"' not in client.get(f"/rollouts/{fast_rollout.pk}/").content.decode()
    rows, keys = editor_rows(fast_rollout)
    response = client.post(f"/rollouts/{fast_rollout.pk}/plan/", post_data(rows, keys))
    assert response.status_code == 302
    assert "only be edited while the rollout is in staging" in client.get(response["Location"]).content.decode()
    assert fast_rollout.state == RolloutState.ACTIVE

