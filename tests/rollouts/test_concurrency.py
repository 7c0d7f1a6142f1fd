"""Racing approvals and requests with real concurrent connections (PostgreSQL)."""
import threading

import pytest
from django.db import connection

from rolloutops.exceptions import DomainError
from rollouts.models import PromotionRequest, Rollout, StageTransition
from rollouts.promotions import promotion_approve, promotion_request
from rollouts.services import rollout_start
from tests.factories import UserFactory

from .conftest import FAST_PLAN, make_ready

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _only_postgres(is_postgres):
    if not is_postgres:
        pytest.skip("row locks and real concurrent connections: PostgreSQL only")


def _race(workers):
    barrier = threading.Barrier(len(workers))
    outcomes = []

    def run(fn):
        try:
            barrier.wait()
            outcomes.append(("ok", fn()))
        except DomainError as exc:
            outcomes.append(("refused", exc.detail))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcomes


def _setup():
    from tests.factories import AgentVersionFactory

    operator = UserFactory(username="op-race", roles=["operator"])
    managers = [UserFactory(username=f"mgr-race-{i}", roles=["manager"]) for i in range(6)]
    version = make_ready(AgentVersionFactory(), operator)
    rollout = rollout_start(actor=operator, version=version, plan=FAST_PLAN)
    return operator, managers, rollout


def test_six_managers_approving_one_request_at_once_move_it_one_stage():
    operator, managers, rollout = _setup()
    promotion = promotion_request(actor=operator, rollout=rollout)
    outcomes = _race([lambda m=m: promotion_approve(actor=m, promotion=promotion) for m in managers])
    assert [o[0] for o in outcomes].count("ok") == 1
    assert Rollout.objects.get(pk=rollout.pk).stage_name == "shadow"
    assert StageTransition.objects.filter(rollout=rollout, action="promote").count() == 1
    assert PromotionRequest.objects.get(pk=promotion.pk).status == "approved"


def test_racing_promotion_requests_leave_one_pending():
    operator, _, rollout = _setup()
    others = [UserFactory(username=f"op-race-{i}", roles=["operator"]) for i in range(5)]
    outcomes = _race([lambda o=o: promotion_request(actor=o, rollout=rollout) for o in [operator, *others]])
    assert [o[0] for o in outcomes].count("ok") == 1
    assert PromotionRequest.objects.filter(rollout=rollout, status="pending").count() == 1


def test_four_watches_looking_at_once_count_each_event_once():
    """The guardrail tests' state is written by compare-and-set: racing looks never add the same
    events twice (a doubled count would double the evidence and the false-rollback rate)."""
    import numpy as np

    from rollouts.decisions import from_json
    from rollouts.models import GuardrailState
    from rollouts.monitor import rollout_watch
    from telemetry import sequential

    from .test_watch import _events

    operator, managers, rollout = _setup()
    for manager in managers[:2]:  # staging → shadow → canary
        promotion_approve(actor=manager, promotion=promotion_request(actor=operator, rollout=Rollout.objects.get(pk=rollout.pk)))
    rollout = Rollout.objects.get(pk=rollout.pk)
    _events(rollout, 200, error_every=25, prefix="w")  # 8 errors in 200: healthy against 5 %, not breached
    outcomes = _race([lambda: rollout_watch(rollout_id=rollout.pk) for _ in range(4)])
    assert [o[0] for o in outcomes] == ["ok"] * 4
    state = from_json(GuardrailState.objects.get(rollout=rollout).state)
    S, _ = state.tests["max_error_rate"]
    # The log-likelihood ratio is linear in the counts: after any number of looks it is that of the
    # totals, exactly once.
    assert np.allclose(S, sequential.one_sample_increment(8, 200, 0.05))
    assert Rollout.objects.get(pk=rollout.pk).state == "active"
