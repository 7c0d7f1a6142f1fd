"""Plan validation, rule by rule: every field is read, every bound is where it says, every problem is
named with its stage. Pure, no database."""
import pytest

from rolloutops.exceptions import Invalid
from rollouts.stages import DEFAULT_GUARDRAILS, parse_plan

STAGING = {"name": "staging", "mode": "off"}


def problems(plan) -> list[str]:
    with pytest.raises(Invalid) as refused:
        parse_plan(plan)
    errors = refused.value.extra["errors"]
    # One problem is the detail itself; several are listed.
    assert refused.value.detail == (errors[0] if len(errors) == 1 else errors)
    return errors


def test_every_field_of_every_stage_is_read():
    plan = parse_plan([
        STAGING,
        {"name": "shadow", "mode": "shadow", "min_duration_s": 3600, "min_samples": 300, "agreement_bar": 0.8},
        {"name": "canary", "mode": "live", "traffic_percent": 7.5, "min_duration_s": 1800, "min_samples": 150,
         "inconclusive_after_s": 120, "guardrails": {"max_error_rate": 0.03, "max_p95_latency_ms": 1200}},
    ])
    assert [s.as_dict() for s in plan] == [
        {"name": "staging", "mode": "off", "traffic_percent": 0.0, "min_duration_s": 0, "min_samples": 0,
         "agreement_bar": None, "guardrails": {}, "inconclusive_after_s": None},
        {"name": "shadow", "mode": "shadow", "traffic_percent": 0.0, "min_duration_s": 3600, "min_samples": 300,
         "agreement_bar": 0.8, "guardrails": {}, "inconclusive_after_s": None},
        {"name": "canary", "mode": "live", "traffic_percent": 7.5, "min_duration_s": 1800, "min_samples": 150,
         "agreement_bar": None, "inconclusive_after_s": 120,
         "guardrails": {**DEFAULT_GUARDRAILS, "max_error_rate": 0.03, "max_p95_latency_ms": 1200}},
    ]


def test_omitted_fields_take_their_defaults():
    plan = parse_plan([{"name": " staging ", "mode": "off"}, {"name": "shadow", "mode": "shadow"},
                       {"name": "canary", "mode": "live", "traffic_percent": 5}])
    assert plan[0].name == "staging"  # names are trimmed
    assert (plan[1].min_duration_s, plan[1].min_samples, plan[1].agreement_bar) == (0, 0, 0.9)
    assert (plan[2].min_duration_s, plan[2].min_samples, plan[2].inconclusive_after_s) == (0, 0, 600)
    assert plan[2].agreement_bar is None and plan[2].guardrails == DEFAULT_GUARDRAILS


def test_numbers_given_as_text_are_read_as_numbers():
    plan = parse_plan([STAGING, {"name": "canary", "mode": "live", "traffic_percent": "5", "min_duration_s": "60",
                                 "min_samples": "10", "inconclusive_after_s": "90"}])
    assert (plan[1].traffic_percent, plan[1].min_duration_s, plan[1].min_samples, plan[1].inconclusive_after_s) == \
        (5.0, 60, 10, 90)


@pytest.mark.parametrize("raw", ["staging", [STAGING], []])
def test_a_plan_is_a_list_of_at_least_two_stages(raw):
    with pytest.raises(Invalid) as refused:
        parse_plan(raw)
    assert refused.value.detail == "a plan is a list of at least two stages, the first being staging"


def test_a_stage_is_an_object_and_the_stages_after_it_are_still_checked():
    assert problems([STAGING, "canary", {"name": "x", "mode": "bogus"}]) == [
        "plan[1]: a stage is an object", "plan[2].mode: must be one of off, shadow, live"]


@pytest.mark.parametrize("name", ["", "   ", "x" * 41])
def test_a_name_is_required_and_at_most_40_characters(name):
    assert problems([STAGING, {"name": name, "mode": "shadow"}]) == ["plan[1].name: required, at most 40 characters"]


def test_a_stage_without_a_name_is_refused_not_named_none():
    assert problems([STAGING, {"mode": "shadow"}]) == ["plan[1].name: required, at most 40 characters"]


def test_a_name_of_40_characters_is_fine():
    assert parse_plan([STAGING, {"name": "x" * 40, "mode": "shadow"}])[1].name == "x" * 40


def test_a_name_appears_once():
    assert problems([STAGING, {"name": "a", "mode": "shadow"}, {"name": "a", "mode": "shadow"}]) == [
        "plan[2].name: 'a' appears twice"]


def test_numbers_that_are_not_numbers_are_named_and_the_rest_still_checked():
    assert problems([STAGING, {"name": "canary", "mode": "live", "traffic_percent": "five"},
                     {"name": "x", "mode": "off"}]) == [
        "plan[1] (canary): traffic_percent, min_duration_s, min_samples, agreement_bar and inconclusive_after_s "
        "are numbers",
        "plan: only the first stage (staging) is off",
    ]


@pytest.mark.parametrize("field", ["min_duration_s", "min_samples", "agreement_bar", "inconclusive_after_s"])
def test_each_number_is_checked(field):
    assert problems([STAGING, {"name": "canary", "mode": "live", "traffic_percent": 5, field: "soon"}])[0].endswith(
        "are numbers")


def test_silence_limits_are_for_live_stages_and_at_least_a_minute():
    assert problems([STAGING, {"name": "canary", "mode": "live", "traffic_percent": 5, "inconclusive_after_s": 59}]) \
        == ["plan[1] (canary).inconclusive_after_s: at least 60 s"]
    assert parse_plan([STAGING, {"name": "canary", "mode": "live", "traffic_percent": 5,
                                 "inconclusive_after_s": 60}])[1].inconclusive_after_s == 60
    assert problems([STAGING, {"name": "shadow", "mode": "shadow", "inconclusive_after_s": 600}]) == [
        "plan[1] (shadow).inconclusive_after_s: only live stages are paused for silence"]


def test_traffic_is_a_percentage():
    assert problems([STAGING, {"name": "canary", "mode": "live", "traffic_percent": 100.5}]) == [
        "plan[1] (canary).traffic_percent: between 0 and 100"]
    assert problems([STAGING, {"name": "canary", "mode": "live", "traffic_percent": -1}])[0] == \
        "plan[1] (canary).traffic_percent: between 0 and 100"
    assert parse_plan([STAGING, {"name": "full", "mode": "live", "traffic_percent": 100}])[1].traffic_percent == 100


def test_only_live_stages_send_traffic_and_each_sends_some():
    assert problems([STAGING, {"name": "shadow", "mode": "shadow", "traffic_percent": 3}]) == [
        "plan[1] (shadow).traffic_percent: a shadow stage sends no traffic to the agent (0)"]
    assert problems([{"name": "staging", "mode": "off", "traffic_percent": 3}, {"name": "s", "mode": "shadow"}])[0]\
        .startswith("plan[0] (staging).traffic_percent: a")
    assert problems([STAGING, {"name": "canary", "mode": "live", "traffic_percent": 0}]) == [
        "plan[1] (canary).traffic_percent: a live stage sends some traffic (> 0)"]
    assert parse_plan([STAGING, {"name": "canary", "mode": "live", "traffic_percent": 0.5}])[1].traffic_percent == 0.5


def test_live_traffic_only_widens_and_may_hold():
    assert problems([STAGING, {"name": "a", "mode": "live", "traffic_percent": 50},
                     {"name": "b", "mode": "live", "traffic_percent": 10}]) == [
        "plan[2] (b).traffic_percent: live stages only widen traffic (10.0 < 50.0)"]
    held = parse_plan([STAGING, {"name": "a", "mode": "live", "traffic_percent": 50},
                       {"name": "b", "mode": "live", "traffic_percent": 50}])
    assert [s.traffic_percent for s in held] == [0, 50, 50]


def test_a_shadow_stage_after_a_live_one_is_not_narrowing():
    plan = parse_plan([STAGING, {"name": "canary", "mode": "live", "traffic_percent": 10},
                       {"name": "shadow", "mode": "shadow"}])
    assert [s.mode for s in plan] == ["off", "live", "shadow"]


@pytest.mark.parametrize("field", ["min_duration_s", "min_samples"])
def test_minimums_are_not_negative(field):
    assert problems([STAGING, {"name": "shadow", "mode": "shadow", field: -1}]) == [
        "plan[1] (shadow): min_duration_s and min_samples are ≥ 0"]


@pytest.mark.parametrize("bar, ok", [(-0.01, False), (0, True), (1, True), (1.01, False), (1.5, False)])
def test_the_agreement_bar_is_a_share(bar, ok):
    plan = [STAGING, {"name": "shadow", "mode": "shadow", "agreement_bar": bar}]
    if ok:
        assert parse_plan(plan)[1].agreement_bar == bar
    else:
        assert problems(plan) == ["plan[1] (shadow).agreement_bar: between 0 and 1"]


def test_guardrails_are_an_object_of_known_names():
    assert problems([STAGING, {"name": "canary", "mode": "live", "traffic_percent": 5, "guardrails": [0.1]}]) == [
        "plan[1] (canary).guardrails: an object"]
    known = ", ".join(sorted(DEFAULT_GUARDRAILS))
    assert problems([STAGING, {"name": "canary", "mode": "live", "traffic_percent": 5,
                               "guardrails": {"max_vibes": 1, "max_mood": 2, "max_error_rate": 2}}]) == [
        f"plan[1] (canary).guardrails: unknown max_mood, max_vibes; known: {known}",
        "plan[1] (canary).guardrails.max_error_rate: a rate strictly between 0 and 1 (got 2); "
        "0 is breached by a single error and 1 can never be",
    ]


@pytest.mark.parametrize("value", [True, "0.1", float("nan"), float("inf"), None])
def test_a_guardrail_is_a_finite_number(value):
    assert problems([STAGING, {"name": "canary", "mode": "live", "traffic_percent": 5,
                               "guardrails": {"max_error_rate": value}}]) == [
        "plan[1] (canary).guardrails.max_error_rate: a number"]


@pytest.mark.parametrize("value, ok", [(0, False), (0.001, True), (0.5, True), (0.999, True), (1, False), (1.5, False)])
def test_a_rate_guardrail_lies_strictly_between_0_and_1(value, ok):
    plan = [STAGING, {"name": "canary", "mode": "live", "traffic_percent": 5, "guardrails": {"max_escalation_rate": value}}]
    if ok:
        assert parse_plan(plan)[1].guardrails["max_escalation_rate"] == value
    else:
        assert problems(plan) == [
            f"plan[1] (canary).guardrails.max_escalation_rate: a rate strictly between 0 and 1 (got {value:g}); "
            "0 is breached by a single error and 1 can never be"]


@pytest.mark.parametrize("value, ok", [(-5, False), (0, False), (0.5, True), (1, True), (3000, True)])
def test_a_latency_guardrail_is_positive(value, ok):
    plan = [STAGING, {"name": "canary", "mode": "live", "traffic_percent": 5, "guardrails": {"max_p95_latency_ms": value}}]
    if ok:
        assert parse_plan(plan)[1].guardrails["max_p95_latency_ms"] == value
    else:
        assert problems(plan) == [f"plan[1] (canary).guardrails.max_p95_latency_ms: a number > 0 (got {value:g})"]


@pytest.mark.parametrize("first", [{"name": "start", "mode": "off"}, {"name": "staging", "mode": "shadow"}])
def test_the_first_stage_is_staging_in_mode_off(first):
    assert problems([first, {"name": "canary", "mode": "live", "traffic_percent": 5}]) == [
        "plan[0]: the first stage is staging (mode off)"]


def test_only_the_first_stage_is_off():
    assert problems([STAGING, {"name": "again", "mode": "off"}, {"name": "shadow", "mode": "shadow"}]) == [
        "plan: only the first stage (staging) is off"]
