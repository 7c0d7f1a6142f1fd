"""Plans and the transition table: pure rules, no database."""
import pytest

from rolloutops.exceptions import Invalid
from rollouts.stages import allowed_actions, default_plan, next_state, parse_plan


def test_default_plan_follows_the_spec_table():
    plan = default_plan()
    assert [s.name for s in plan] == ["staging", "shadow", "canary", "expand-10", "expand-25", "expand-50", "full"]
    assert [s.traffic_percent for s in plan] == [0, 0, 5, 10, 25, 50, 100]
    assert plan[1].min_samples == 500 and plan[1].min_duration_s == 24 * 3600 and plan[1].agreement_bar == 0.90
    assert plan[2].min_duration_s == 2 * 3600 and plan[2].min_samples == 200


def test_missing_plan_means_the_default_plan():
    assert [s.name for s in parse_plan(None)] == [s.name for s in default_plan()]


def test_plan_must_start_in_staging():
    with pytest.raises(Invalid) as exc:
        parse_plan([{"name": "canary", "mode": "live", "traffic_percent": 5}, {"name": "full", "mode": "live", "traffic_percent": 100}])
    assert "staging" in str(exc.value.detail)


def test_plan_refuses_narrowing_live_traffic_and_names_every_problem():
    with pytest.raises(Invalid) as exc:
        parse_plan([
            {"name": "staging", "mode": "off"},
            {"name": "canary", "mode": "live", "traffic_percent": 50},
            {"name": "canary", "mode": "live", "traffic_percent": 10},
            {"name": "x", "mode": "shadow", "traffic_percent": 3},
        ])
    errors = exc.value.extra["errors"]
    assert any("appears twice" in e for e in errors)
    assert any("only widen" in e for e in errors)
    assert any("plan[3] (x).traffic_percent" in e for e in errors)


def test_live_stages_get_default_guardrails_and_keep_overrides():
    plan = parse_plan([{"name": "staging", "mode": "off"},
                       {"name": "canary", "mode": "live", "traffic_percent": 5, "guardrails": {"max_error_rate": 0.01}}])
    assert plan[1].guardrails["max_error_rate"] == 0.01
    assert plan[1].guardrails["max_p95_latency_ms"] == 3000


def test_unknown_guardrail_is_refused():
    with pytest.raises(Invalid):
        parse_plan([{"name": "staging", "mode": "off"},
                    {"name": "canary", "mode": "live", "traffic_percent": 5, "guardrails": {"max_vibes": 1}}])


def test_transition_table():
    assert allowed_actions("active") == {"promote", "complete", "pause", "rollback"}
    assert next_state("paused", "resume") == "active"
    assert next_state("rolled_back", "resume") is None
    assert allowed_actions("completed") == set()

