"""Guardrails and the shadow gate, fed by real ingestion and folding: breaches refuse promotion and
roll live stages back by themselves; agreement below the bar and flagged segments hold shadow."""
import pytest
from django.utils import timezone

from rolloutops.models import AuditEntry
from rollouts.models import Rollout, StageTransition
from rollouts.monitor import rollout_watch, rollouts_watch_all
from rollouts.promotions import PromotionRefused, promotion_approve, promotion_request
from rollouts.routing import route
from rollouts.services import rollout_start
from telemetry.fold import events_fold
from telemetry.services import events_ingest

pytestmark = pytest.mark.django_db


def _live(rollout, operator, manager, stage="canary"):
    while (current := Rollout.objects.get(pk=rollout.pk)).stage_name != stage:
        if current.mode == "live":  # a live stage opens no gate on silence
            _agent_events(current, 20, prefix=current.stage_name)
        promotion_approve(actor=manager, promotion=promotion_request(actor=operator, rollout=current))
    return Rollout.objects.get(pk=rollout.pk)


def _agent_events(rollout, n, *, error_every=0, latency=300, prefix="e"):
    at = timezone.now()  # after the transition that opened the stage
    events = [{"agent": rollout.agent.slug, "request_key": f"{prefix}-{i}", "kind": "agent", "label": "approve",
               "occurred_at": at.isoformat(), "latency_ms": latency, "trace": {"steps": ["lookup"]},
               "outcome": "error" if error_every and i % error_every == 0 else "ok"} for i in range(n)]
    result = events_ingest(events=events)
    assert not result.errors
    events_fold()


def _pairs(rollout, segments: dict[str, tuple[int, int]]):
    at = timezone.now()  # after the transition that opened the stage
    events = []
    for segment, (pairs, agreements) in segments.items():
        for i in range(pairs):
            key = f"{segment}-{i}"
            events.append({"agent": rollout.agent.slug, "request_key": key, "kind": "agent", "label": "approve",
                           "segment": segment, "occurred_at": at.isoformat(), "outcome": "ok", "trace": {"steps": ["lookup"]}})
            events.append({"agent": rollout.agent.slug, "request_key": key, "kind": "human",
                           "label": "approve" if i < agreements else "reject", "segment": segment,
                           "occurred_at": at.isoformat(), "outcome": "ok"})
    assert not events_ingest(events=events).errors
    events_fold()


def test_significant_error_breach_rolls_back_by_itself_with_evidence(fast_rollout, operator, manager):
    rollout = _live(fast_rollout, operator, manager)
    _agent_events(rollout, 300, error_every=5)  # 20 % errors against a 5 % guardrail
    assert rollouts_watch_all()["rolled_back"] == 1
    rollout = Rollout.objects.get(pk=rollout.pk)
    assert rollout.state == "rolled_back" and rollout.traffic_percent == 0
    assert rollout.end_reason.startswith("automatic rollback: Error rate 20.0% over 5.0%")
    transition = StageTransition.objects.get(rollout=rollout, action="rollback")
    assert transition.automatic and transition.actor is None
    breached = {g["name"] for g in transition.evidence["breached"]}
    assert "max_error_rate" in breached
    assert AuditEntry.objects.filter(action="rollout.rollback", actor_label="system").exists()
    assert route(rollout.agent.slug, "any").handler == "human"


def test_healthy_canary_is_left_alone_and_a_small_excess_is_only_watched(fast_rollout, operator, manager):
    rollout = _live(fast_rollout, operator, manager)
    _agent_events(rollout, 40, error_every=16)  # 7.5 % on 40 requests: above 5 %, far from significant
    assert rollout_watch(rollout_id=rollout.pk) == "ok"
    assert Rollout.objects.get(pk=rollout.pk).state == "active"


def test_breached_guardrail_refuses_promotion(fast_rollout, operator, manager):
    rollout = _live(fast_rollout, operator, manager)
    _agent_events(rollout, 200, latency=9000)  # every request above the 3 s p95 limit
    with pytest.raises(PromotionRefused) as exc:
        promotion_request(actor=operator, rollout=rollout)
    assert any(u.startswith("guardrail breached: p95 latency") for u in exc.value.unmet)


def test_full_stage_that_held_its_stabilization_completes(fast_rollout, operator, manager):
    rollout = _live(fast_rollout, operator, manager, stage="full")
    assert rollout_watch(rollout_id=rollout.pk) == "ok"  # no data in full yet: nothing completes on silence
    _agent_events(rollout, 20, prefix="full")
    assert rollout_watch(rollout_id=rollout.pk) == "completed"
    rollout = Rollout.objects.get(pk=rollout.pk)
    assert rollout.state == "completed" and route(rollout.agent.slug, "k").handler == "agent"


def _shadow_rollout(ready_version, operator, manager, bar=0.9):
    plan = [{"name": "staging", "mode": "off"}, {"name": "shadow", "mode": "shadow", "agreement_bar": bar},
            {"name": "full", "mode": "live", "traffic_percent": 100}]
    rollout = rollout_start(actor=operator, version=ready_version, plan=plan)
    promotion_approve(actor=manager, promotion=promotion_request(actor=operator, rollout=rollout))
    return Rollout.objects.get(pk=rollout.pk)


def test_shadow_agreement_below_the_bar_is_refused(ready_version, operator, manager):
    rollout = _shadow_rollout(ready_version, operator, manager)
    _pairs(rollout, {"retail": (200, 176)})  # 88 %: lower bound well under 90 %
    with pytest.raises(PromotionRefused) as exc:
        promotion_request(actor=operator, rollout=rollout)
    assert any(u.startswith("agreement: Wilson 95 % lower bound") for u in exc.value.unmet)


def test_shadow_with_a_flagged_segment_is_refused_even_when_overall_agreement_is_high(ready_version, operator, manager):
    rollout = _shadow_rollout(ready_version, operator, manager, bar=0.8)
    _pairs(rollout, {"retail": (900, 890), "corporate": (60, 36)})
    with pytest.raises(PromotionRefused) as exc:
        promotion_request(actor=operator, rollout=rollout)
    assert "systematic discrepancy flagged in segment(s): corporate" in exc.value.unmet


def test_shadow_with_good_agreement_is_promoted(ready_version, operator, manager):
    rollout = _shadow_rollout(ready_version, operator, manager)
    _pairs(rollout, {"retail": (400, 396), "corporate": (200, 197)})
    promotion = promotion_request(actor=operator, rollout=rollout)
    rollout = promotion_approve(actor=manager, promotion=promotion)
    assert rollout.stage_name == "full"
    frozen = rollout.transitions.get(action="promote", to_stage="full").evidence["stage"]["agreement"]
    assert frozen["pairs"] == 600 and frozen["flagged_segments"] == []


def test_a_newly_flagged_shadow_segment_is_announced_once(ready_version, operator, manager, settings,
                                                          django_capture_on_commit_callbacks):
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "WEBHOOK_URLS": ["http://127.0.0.1:9/hook"]}
    rollout = _shadow_rollout(ready_version, operator, manager, bar=0.8)
    _pairs(rollout, {"retail": (900, 890), "corporate": (60, 36)})
    with django_capture_on_commit_callbacks() as first:
        rollout_watch(rollout_id=rollout.pk)
    with django_capture_on_commit_callbacks() as second:
        rollout_watch(rollout_id=rollout.pk)
    assert len(first) == 1 and len(second) == 0
    assert Rollout.objects.get(pk=rollout.pk).flagged_notified == ["corporate"]


def test_the_watch_warms_the_shadow_figures_for_the_first_viewer(ready_version, operator, manager,
                                                                django_assert_max_num_queries):
    from telemetry.selectors import rollout_discrepancy

    rollout = _shadow_rollout(ready_version, operator, manager)
    _pairs(rollout, {"retail": (100, 95)})
    rollout_watch(rollout_id=rollout.pk)
    with django_assert_max_num_queries(3):  # existence, watermark, pending count: the figures come from the cache
        report = rollout_discrepancy(rollout_id=rollout.pk)
    assert report["pairs"] == 100
