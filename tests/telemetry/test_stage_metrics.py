"""stage_metrics: the figures the rollouts app gates and guards on, from the rollups."""
from datetime import timedelta

import pytest

from telemetry.fold import events_fold
from telemetry.selectors import stage_metrics
from telemetry.services import events_ingest, human_decision_record
from tests.telemetry.factories import T0

pytestmark = pytest.mark.django_db


def _at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def test_stage_metrics_counts_samples_errors_escalations_latency_and_pairs(shadow_rollout):
    slug = shadow_rollout.agent.slug
    events = [
        {"agent": slug, "request_key": "k1", "kind": "agent", "label": "approve", "occurred_at": _at(2), "latency_ms": 120},
        {"agent": slug, "request_key": "k2", "kind": "agent", "label": "deny", "occurred_at": _at(2.5),
         "outcome": "error", "latency_ms": 3000},
        {"agent": slug, "request_key": "k3", "kind": "agent", "label": "deny", "occurred_at": _at(3),
         "outcome": "timeout", "latency_ms": 9000},
        {"agent": slug, "request_key": "k4", "kind": "agent", "label": "deny", "occurred_at": _at(3),
         "outcome": "escalated"},
        {"agent": slug, "request_key": "k1", "kind": "human", "label": "approve", "occurred_at": _at(4)},
        # Before the shadow stage: counted in staging, not shadow.
        {"agent": slug, "request_key": "s1", "kind": "agent", "label": "deny", "occurred_at": _at(0.5)},
    ]
    assert events_ingest(events=events).accepted == 6
    assert human_decision_record(agent=shadow_rollout.agent, request_key="k2", label="approve", occurred_at=T0 + timedelta(hours=5))

    before = stage_metrics(rollout_id=shadow_rollout.pk, stage="shadow")
    assert before.agent_events == 0 and before.pending_events == 7 and before.computed_at is None

    assert events_fold() == 7
    m = stage_metrics(rollout_id=shadow_rollout.pk, stage="shadow")
    assert (m.agent_events, m.errors, m.escalations) == (4, 2, 1)
    # People are the incumbent in this shadow: their two decisions are the control's outcomes.
    assert (m.control.requests, m.control.errors, m.pairs, m.agreements) == (2, 0, 2, 1)
    assert (m.candidate.labelled, m.candidate.disagreements) == (2, 1)
    assert sum(m.latency_counts.values()) == 3 and m.candidate.timed == 3
    assert m.p95_latency_ms == 10000.0  # the bucket (7500, 10000] holds the 95th percentile (for display)
    assert m.candidate.slow == 0  # shadow has no latency limit: `slow` is decided against a live stage's
    assert m.first_event_at == T0 + timedelta(hours=2)
    assert m.last_agent_event_at == T0 + timedelta(hours=3)
    assert m.pending_events == 0 and m.computed_at is not None
    assert stage_metrics(rollout_id=shadow_rollout.pk, stage="staging").agent_events == 1


def test_unknown_stage_has_zero_figures(shadow_rollout):
    m = stage_metrics(rollout_id=shadow_rollout.pk, stage="canary")
    assert (m.agent_events, m.pairs, m.p95_latency_ms, m.candidate.slow, m.control.requests) == (0, 0, None, 0, 0)


def test_slow_is_exact_at_any_limit_in_a_live_stage():
    """A 2,999 ms and a 3,001 ms decision sit in the same histogram bucket; against a 3,000 ms limit
    one is slow and the other is not (docs/decisions.md, "Latency")."""
    from rollouts.models import StageMode
    from tests.telemetry.factories import rollout_with_history

    rollout = rollout_with_history(stages=(("staging", StageMode.OFF, 0), ("canary", StageMode.LIVE, 100)))
    slug = rollout.agent.slug
    events = [{"agent": slug, "request_key": f"k{ms}", "kind": "agent", "label": "ok", "occurred_at": _at(2),
               "latency_ms": ms} for ms in (2999, 3000, 3000.5, 3001, 120)]
    assert events_ingest(events=events).accepted == 5
    events_fold()
    m = stage_metrics(rollout_id=rollout.pk, stage="canary")
    assert (m.candidate.requests, m.candidate.timed, m.candidate.slow) == (5, 5, 2)


def test_rollup_sums_are_read_once_per_fold_and_follow_the_next_fold(shadow_rollout, django_assert_num_queries):
    """Pages and their polls ask for the same figures many times between two folds: the sums over
    the rollups are computed once per fold watermark; the watermark and the queue are read each time."""
    from telemetry.selectors import reference_pairs

    slug = shadow_rollout.agent.slug
    pair = [{"agent": slug, "request_key": "k1", "kind": "agent", "label": "approve", "occurred_at": _at(2)},
            {"agent": slug, "request_key": "k1", "kind": "human", "label": "approve", "occurred_at": _at(3)}]
    events_ingest(events=pair)
    events_fold()
    first = stage_metrics(rollout_id=shadow_rollout.pk, stage="shadow")
    assert reference_pairs(rollout_id=shadow_rollout.pk)["human"] == 1
    with django_assert_num_queries(1):  # the watermark and the pending count, in one round trip
        again = stage_metrics(rollout_id=shadow_rollout.pk, stage="shadow")
    with django_assert_num_queries(1):  # the watermark
        assert reference_pairs(rollout_id=shadow_rollout.pk)["human"] == 1
    assert (again.pairs, again.agent_events, again.computed_at) == (first.pairs, first.agent_events, first.computed_at)

    events_ingest(events=[{**e, "request_key": "k2", "label": "deny" if e["kind"] == "human" else "approve"}
                          for e in pair])
    events_fold()
    after = stage_metrics(rollout_id=shadow_rollout.pk, stage="shadow")
    assert (after.pairs, after.agreements, after.agent_events) == (2, 1, 2)
    assert after.computed_at > first.computed_at
    assert reference_pairs(rollout_id=shadow_rollout.pk)["human"] == 2
