"""The transition table and the default plan, entry by entry: pure, no database."""
import pytest

from rollouts.stages import (
    DEFAULT_AGREEMENT_BAR,
    DEFAULT_GUARDRAILS,
    DEFAULT_INCONCLUSIVE_AFTER_S,
    allowed_actions,
    default_plan,
    next_state,
)

HOUR = 3600


ALL_ACTIONS = ["start", "promote", "complete", "pause", "resume", "rollback", "revert"]
EXPECTED = {
    # state: {action: next state}; anything missing is refused.
    "active": {"promote": "active", "complete": "completed", "pause": "paused", "rollback": "rolled_back"},
    "paused": {"resume": "active", "rollback": "rolled_back"},
    "rolled_back": {},
    "completed": {"revert": "reverted"},
    "reverted": {},
}


@pytest.mark.parametrize("state", list(EXPECTED))
def test_each_state_allows_exactly_its_actions(state):
    assert allowed_actions(state) == set(EXPECTED[state])


@pytest.mark.parametrize("state", list(EXPECTED))
@pytest.mark.parametrize("action", ALL_ACTIONS)
def test_every_state_and_action_lead_where_the_table_says(state, action):
    assert next_state(state, action) == EXPECTED[state].get(action)


def test_an_unknown_state_allows_nothing():
    assert allowed_actions("exploded") == set()
    assert next_state("exploded", "resume") is None


def _live(name, traffic, duration, samples):
    return {"name": name, "mode": "live", "traffic_percent": traffic, "min_duration_s": duration,
            "min_samples": samples, "agreement_bar": None, "guardrails": DEFAULT_GUARDRAILS,
            "inconclusive_after_s": DEFAULT_INCONCLUSIVE_AFTER_S}


def test_the_default_plan_field_by_field():
    assert [s.as_dict() for s in default_plan()] == [
        {"name": "staging", "mode": "off", "traffic_percent": 0, "min_duration_s": 0, "min_samples": 0,
         "agreement_bar": None, "guardrails": {}, "inconclusive_after_s": None},
        {"name": "shadow", "mode": "shadow", "traffic_percent": 0, "min_duration_s": 24 * HOUR, "min_samples": 500,
         "agreement_bar": DEFAULT_AGREEMENT_BAR, "guardrails": {}, "inconclusive_after_s": None},
        _live("canary", 5, 2 * HOUR, 200),
        _live("expand-10", 10, 2 * HOUR, 200),
        _live("expand-25", 25, 4 * HOUR, 500),
        _live("expand-50", 50, 4 * HOUR, 500),
        _live("full", 100, 24 * HOUR, 1000),
    ]
    assert (DEFAULT_AGREEMENT_BAR, DEFAULT_INCONCLUSIVE_AFTER_S) == (0.90, 600)


def test_each_live_stage_gets_its_own_copy_of_the_default_guardrails():
    plan = default_plan()
    plan[2].guardrails["max_error_rate"] = 0.5
    assert plan[3].guardrails["max_error_rate"] == DEFAULT_GUARDRAILS["max_error_rate"] != 0.5
