"""The client's routing rules, without a network: the bucket function shared with the server, the
four rules of client/README.md, and the compiled plans the hot path uses."""
import pytest
from rolloutops_client import routing as client_routing
from rolloutops_client.routing import (
    AgentPlan, FailSafeReason, Route, SnapshotError, answer, bucket, compile_snapshot, goes_to_candidate,
)

from rollouts.routing import bucket as server_bucket, goes_to_candidate as server_goes_to_candidate

KEYS = [f"req-{i}" for i in range(10_000)]
SALT = "9f2c4a1b0d3e5f67"


def entry(*, handler="agent", version="2.3.0", state="active", mode="live", traffic=5.0, stage="canary",
          candidate="2.4.0", salt=SALT, rollout_id=12, rollout=True):
    return {
        "incumbent": {"handler": handler, "version": version},
        "rollout": {"id": rollout_id, "state": state, "stage": stage, "mode": mode, "traffic_percent": traffic,
                    "salt": salt, "candidate": candidate} if rollout else None,
    }


def test_ten_thousand_keys_land_in_the_same_bucket_as_on_the_server():
    assert [bucket(SALT, k) for k in KEYS] == [server_bucket(SALT, k) for k in KEYS]
    # Keys beyond ASCII hash the same too (both encode UTF-8).
    odd = ["clé-é", "請求-1", "emoji-🚀", "", "a\x1fb", " " * 200]
    assert [bucket("sel", k) for k in odd] == [server_bucket("sel", k) for k in odd]


def test_the_compiled_hot_path_hashes_like_the_server():
    plan = AgentPlan(entry(traffic=0.0))
    assert [plan.route(k).bucket for k in KEYS] == [server_bucket(SALT, k) for k in KEYS]


@pytest.mark.parametrize("percent", [0, 0.01, 0.5, 1, 5, 12.345, 33.33, 50, 99.99, 100])
def test_the_share_threshold_matches_the_server(percent):
    assert [goes_to_candidate(b, percent) for b in range(10_000)] == \
        [server_goes_to_candidate(b, percent) for b in range(10_000)]


def test_rule_1_without_a_rollout_the_incumbent_acts_and_there_is_no_bucket():
    assert answer(entry(rollout=False), "k") == Route("agent", "2.3.0", False, None, None, None, 0.0, None)
    humans = answer(entry(handler="human", version=None, rollout=False), "k")
    assert (humans.handler, humans.version, humans.bucket, humans.fail_safe) == ("human", None, None, False)


@pytest.mark.parametrize("state,mode", [("paused", "live"), ("paused", "shadow"), ("active", "off")])
def test_rule_2_paused_or_staging_the_incumbent_acts_with_the_bucket_known(state, mode):
    got = answer(entry(state=state, mode=mode, traffic=50.0), "req-7")
    assert got == Route("agent", "2.3.0", False, None, 12, "canary", 0.0, bucket(SALT, "req-7"), state)


def test_rule_3_shadow_the_incumbent_acts_and_the_candidate_runs_beside():
    got = answer(entry(handler="human", version=None, mode="shadow", stage="shadow", traffic=0.0), "req-7")
    assert got == Route("human", None, True, "2.4.0", 12, "shadow", 0.0, bucket(SALT, "req-7"), "active")


def test_rule_4_live_the_candidate_takes_its_share_and_the_incumbent_the_rest():
    answers = [answer(entry(traffic=25.0), k) for k in KEYS]
    candidate = [a for a in answers if a.version == "2.4.0"]
    assert abs(len(candidate) / len(KEYS) - 0.25) <= 0.01
    assert all(a.handler == "agent" and a.traffic_percent == 25.0 and a.bucket < 2500 for a in candidate)
    rest = [a for a in answers if a.version != "2.4.0"]
    assert all((a.handler, a.version, a.shadow, a.bucket >= 2500) == ("agent", "2.3.0", False, True) for a in rest)
    # With humans as the incumbent, the rest goes to humans.
    assert answer(entry(handler="human", version=None, traffic=0.01), "req-1").handler == "human"


def test_raising_the_share_never_moves_a_key_back_to_the_incumbent():
    previous: set[str] = set()
    for percent in (5, 10, 25, 50, 100):
        plan = AgentPlan(entry(traffic=float(percent)))
        chosen = {k for k in KEYS if plan.route(k).version == "2.4.0"}
        assert previous <= chosen
        previous = chosen
    assert len(previous) == len(KEYS)


@pytest.mark.parametrize("variant", [
    dict(rollout=False), dict(handler="human", version=None, rollout=False), dict(state="paused"),
    dict(mode="off"), dict(mode="shadow", traffic=0.0), dict(traffic=5.0), dict(traffic=100.0),
    dict(handler="human", version=None, traffic=50.0), dict(mode="some-future-mode"),
])
def test_compiled_plans_answer_exactly_as_the_rules(variant):
    e = entry(**variant)
    plan = AgentPlan(e)
    for key in KEYS[:3000]:
        assert plan.route(key) == answer(e, key)


def test_answers_are_memoised_per_bucket_so_a_repeat_allocates_nothing():
    plan = AgentPlan(entry(traffic=50.0))
    assert plan.route("req-1") is plan.route("req-1")
    fixed = AgentPlan(entry(rollout=False))
    assert fixed.route("a") is fixed.route("b")


def test_an_invalid_entry_fails_safe_for_that_agent_only():
    snapshot = compile_snapshot({"buckets": 10_000, "agents": {
        "good": entry(),
        "no-salt": {"incumbent": {"handler": "agent", "version": "1"},
                    "rollout": {**entry()["rollout"], "salt": None}},
        "bad-handler": {"incumbent": {"handler": "robot", "version": "1"}, "rollout": None},
        "too-much": entry(traffic=150.0),
        "not-an-object": [1, 2],
    }})
    assert set(snapshot.plans) == {"good"}
    assert set(snapshot.invalid) == {"no-salt", "bad-handler", "too-much", "not-an-object"}
    assert "salt" in snapshot.invalid["no-salt"]


@pytest.mark.parametrize("body", [[], {"agents": []}, {"buckets": 1000, "agents": {}}, "text"])
def test_an_unusable_snapshot_is_refused_whole(body):
    with pytest.raises(SnapshotError):
        compile_snapshot(body)


def test_fail_safe_answers_are_the_human_path_flagged():
    route = client_routing.fail_safe_route(FailSafeReason.STALE)
    assert (route.handler, route.version, route.shadow, route.bucket, route.traffic_percent) == ("human", None, False,
                                                                                                  None, 0.0)
    assert route.fail_safe and route.as_dict()["reason"] == "stale"
