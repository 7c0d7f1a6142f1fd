"""Promotion gates, four eyes, and decisions that move a rollout exactly one stage."""
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import ChecklistItem
from agents.services import evaluation_record
from rolloutops.exceptions import Conflict, Forbidden
from rolloutops.models import AuditEntry
from rollouts.models import PromotionRequest, Rollout, StageTransition
from rollouts.promotions import PromotionRefused, promotion_approve, promotion_reject, promotion_request
from rollouts.services import rollout_rollback, rollout_start
from tests.factories import AgentVersionFactory

from .conftest import FAST_PLAN

pytestmark = pytest.mark.django_db


def test_request_then_approval_moves_one_stage_with_history_and_audit(fast_rollout, operator, manager):
    promotion = promotion_request(actor=operator, rollout=fast_rollout, reason="staging checks done")
    assert promotion.status == "pending" and promotion.to_stage == "shadow"
    rollout = promotion_approve(actor=manager, promotion=promotion, comment="go")
    assert rollout.stage_name == "shadow" and rollout.mode == "shadow"
    transition = StageTransition.objects.filter(rollout=rollout, action="promote").get()
    assert transition.actor == manager and transition.from_stage == "staging" and transition.to_stage == "shadow"
    assert transition.evidence["readiness"]["ready"] is True  # evidence frozen with the decision
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"promotion.requested", "promotion.approved", "rollout.promote"} <= actions


def test_requester_cannot_approve_own_request_even_as_manager(fast_rollout, operator):
    operator.groups.add(*__import__("django.contrib.auth.models", fromlist=["Group"]).Group.objects.filter(name="manager"))
    operator = type(operator).objects.get(pk=operator.pk)
    promotion = promotion_request(actor=operator, rollout=fast_rollout)
    with pytest.raises(Forbidden, match="four eyes"):
        promotion_approve(actor=operator, promotion=promotion)
    assert Rollout.objects.get(pk=fast_rollout.pk).stage_name == "staging"


def test_only_managers_decide(fast_rollout, operator, operator2):
    promotion = promotion_request(actor=operator, rollout=fast_rollout)
    with pytest.raises(Forbidden):
        promotion_approve(actor=operator2, promotion=promotion)


def test_second_approval_of_same_request_moves_one_stage(fast_rollout, operator, manager, manager2):
    promotion = promotion_request(actor=operator, rollout=fast_rollout)
    promotion_approve(actor=manager, promotion=promotion)
    with pytest.raises(Conflict, match="already approved"):
        promotion_approve(actor=manager2, promotion=promotion)
    assert Rollout.objects.get(pk=fast_rollout.pk).stage_name == "shadow"


def test_rejected_request_leaves_the_stage(fast_rollout, operator, manager):
    promotion = promotion_request(actor=operator, rollout=fast_rollout)
    promotion_reject(actor=manager, promotion=promotion, comment="not this week")
    assert PromotionRequest.objects.get(pk=promotion.pk).status == "rejected"
    assert Rollout.objects.get(pk=fast_rollout.pk).stage_name == "staging"


def test_one_pending_request_at_a_time(fast_rollout, operator, operator2):
    promotion_request(actor=operator, rollout=fast_rollout)
    with pytest.raises(Conflict, match="already waits"):
        promotion_request(actor=operator2, rollout=fast_rollout)


def test_version_not_ready_is_refused_naming_the_item(operator):
    version = AgentVersionFactory()
    rollout = rollout_start(actor=operator, version=version, plan=FAST_PLAN)
    keys = list(ChecklistItem.objects.values_list("key", flat=True))
    evaluation_record(actor=operator, version=version, results=[
        {"item": k, "status": "fail" if k.startswith("security.") else "pass"} for k in keys])
    with pytest.raises(PromotionRefused) as exc:
        promotion_request(actor=operator, rollout=rollout)
    text = " ".join(exc.value.unmet)
    assert "not ready" in text and "security." in text
    refused = PromotionRequest.objects.get(rollout=rollout)
    assert refused.status == "refused" and refused.unmet == exc.value.unmet


def test_stabilization_and_samples_are_gates(ready_version, operator):
    plan = [{"name": "staging", "mode": "off"},
            {"name": "canary", "mode": "live", "traffic_percent": 5, "min_duration_s": 7200, "min_samples": 200},
            {"name": "full", "mode": "live", "traffic_percent": 100}]
    plan[0].update(min_duration_s=3600, min_samples=0)
    rollout = rollout_start(actor=operator, version=ready_version, plan=plan)
    with pytest.raises(PromotionRefused) as exc:
        promotion_request(actor=operator, rollout=rollout)
    assert any(u.startswith("stabilization: ") and "of 1h00m" in u for u in exc.value.unmet)
    Rollout.objects.filter(pk=rollout.pk).update(stage_entered_at=timezone.now() - timedelta(hours=2))
    rollout.refresh_from_db()
    assert promotion_request(actor=operator, rollout=rollout).status == "pending"


def test_live_stage_needs_its_sample_minimum(ready_version, operator, manager):
    plan = [{"name": "staging", "mode": "off"},
            {"name": "canary", "mode": "live", "traffic_percent": 5, "min_samples": 200},
            {"name": "full", "mode": "live", "traffic_percent": 100}]
    rollout = rollout_start(actor=operator, version=ready_version, plan=plan)
    promotion_approve(actor=manager, promotion=promotion_request(actor=operator, rollout=rollout))
    rollout.refresh_from_db()
    with pytest.raises(PromotionRefused) as exc:
        promotion_request(actor=operator, rollout=rollout)
    assert "samples: 0 of 200 in canary" in exc.value.unmet


def test_shadow_without_pairs_says_no_data(ready_version, operator, manager):
    plan = [{"name": "staging", "mode": "off"}, {"name": "shadow", "mode": "shadow", "agreement_bar": 0.9},
            {"name": "full", "mode": "live", "traffic_percent": 100}]
    rollout = rollout_start(actor=operator, version=ready_version, plan=plan)
    promotion_approve(actor=manager, promotion=promotion_request(actor=operator, rollout=rollout))
    rollout.refresh_from_db()
    with pytest.raises(PromotionRefused) as exc:
        promotion_request(actor=operator, rollout=rollout)
    assert any("agreement: no data" in u for u in exc.value.unmet)


def test_gates_are_checked_again_at_approval(fast_rollout, operator, manager):
    promotion = promotion_request(actor=operator, rollout=fast_rollout)
    # The evidence lapses between request and approval: the security item now fails.
    evaluation_record(actor=operator, version=fast_rollout.version,
                      results=[{"item": "security.encryption", "status": "fail", "evidence": "pentest finding"}])
    with pytest.raises(PromotionRefused, match="security.encryption"):
        promotion_approve(actor=manager, promotion=promotion)
    assert Rollout.objects.get(pk=fast_rollout.pk).stage_name == "staging"
    assert PromotionRequest.objects.get(pk=promotion.pk).status == "pending"


def test_rollback_cancels_pending_promotion_and_blocks_more(fast_rollout, operator, manager):
    promotion = promotion_request(actor=operator, rollout=fast_rollout)
    rollout_rollback(actor=operator, rollout=fast_rollout, reason="wrong version")
    assert PromotionRequest.objects.get(pk=promotion.pk).status == "cancelled"
    with pytest.raises(Conflict):
        promotion_approve(actor=manager, promotion=promotion)
    with pytest.raises(PromotionRefused, match="rolled back"):
        promotion_request(actor=operator, rollout=Rollout.objects.get(pk=fast_rollout.pk))


def test_one_open_rollout_per_agent(fast_rollout, operator):
    other = AgentVersionFactory(agent=fast_rollout.agent)
    with pytest.raises(Conflict, match="already has an open rollout"):
        rollout_start(actor=operator, version=other)
