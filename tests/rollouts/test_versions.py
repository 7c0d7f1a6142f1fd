"""Every version, not only the first: the incumbent keeps production while a candidate rolls out,
rollback returns traffic to it, completion makes the candidate the incumbent, and an operator can
revert production to the version before."""
from collections import Counter

import pytest
from django.utils import timezone

from agents.models import Agent, ProductionChange
from rolloutops.models import AuditEntry
from rollouts.models import Rollout
from rollouts.monitor import rollout_watch
from rollouts.promotions import promotion_approve, promotion_request
from rollouts.routing import route
from rollouts.services import production_revert, rollout_rollback, rollout_start
from telemetry.fold import events_fold
from telemetry.models import DiscrepantPair, Event, PairHour
from telemetry.selectors import rollout_discrepancy
from telemetry.services import events_ingest
from tests.factories import AgentFactory, AgentVersionFactory

from .conftest import FAST_PLAN, make_ready

pytestmark = pytest.mark.django_db

KEYS = [f"claim-{i}" for i in range(10_000)]


def _report(rollout, n=20, *, prefix=None, version=None):
    now = timezone.now().isoformat()
    prefix = prefix or f"{rollout.pk}-{rollout.stage_name}"
    events = [{"agent": rollout.agent.slug, "request_key": f"{prefix}-{i}", "kind": "agent", "label": "approve",
               "outcome": "ok", "latency_ms": 200, "occurred_at": now, "trace": {"steps": ["lookup"]},
               "version": version or rollout.version.version} for i in range(n)]
    assert not events_ingest(events=events).errors
    events_fold()


def _promote_to(rollout, stage, operator, manager):
    while (current := Rollout.objects.get(pk=rollout.pk)).stage_name != stage:
        if current.mode == "live":
            _report(current)
        promotion_approve(actor=manager, promotion=promotion_request(actor=operator, rollout=current))
    return Rollout.objects.get(pk=rollout.pk)


def _complete(version, operator, manager):
    rollout = _promote_to(rollout_start(actor=operator, version=version, plan=FAST_PLAN), "full", operator, manager)
    _report(rollout)
    assert rollout_watch(rollout_id=rollout.pk) == "completed"
    return Rollout.objects.get(pk=rollout.pk)


def _where(agent, keys=KEYS):
    """Who acts on each key: a Counter of (handler, version)."""
    return Counter((a.handler, a.version) for a in (route(agent.slug, k) for k in keys))


@pytest.fixture
def two_versions(operator, manager):
    v1 = make_ready(AgentVersionFactory(version="2.3.0"), operator)
    _complete(v1, operator, manager)
    v2 = make_ready(AgentVersionFactory(agent=Agent.objects.get(pk=v1.agent_id), version="2.4.0"), operator)
    return v1, v2


def test_a_human_first_agent_behaves_as_today(operator, manager):
    v1 = make_ready(AgentVersionFactory(), operator)
    rollout = rollout_start(actor=operator, version=v1, plan=FAST_PLAN)
    assert _where(v1.agent, KEYS[:500]) == {("human", None): 500}
    canary = _promote_to(rollout, "canary", operator, manager)
    share = _where(v1.agent)
    assert set(share) == {("human", None), ("agent", v1.version)}
    assert abs(share[("agent", v1.version)] / 10_000 - 0.05) < 0.01
    rollout_rollback(actor=operator, rollout=canary, reason="bad answers")
    assert _where(v1.agent, KEYS[:500]) == {("human", None): 500}


def test_version_one_completes_and_version_two_in_staging_and_shadow_leaves_every_key_with_it(two_versions, operator, manager):
    v1, v2 = two_versions
    agent = Agent.objects.get(pk=v1.agent_id)
    assert agent.production_version_id == v1.pk
    assert _where(agent) == {("agent", "2.3.0"): 10_000}
    rollout = rollout_start(actor=operator, version=v2, plan=FAST_PLAN)
    assert rollout.incumbent_version_id == v1.pk
    assert _where(agent) == {("agent", "2.3.0"): 10_000}  # staging changes no routing
    shadow = _promote_to(rollout, "shadow", operator, manager)
    answers = [route(agent.slug, k) for k in KEYS[:1000]]
    assert {(a.handler, a.version, a.shadow, a.shadow_version) for a in answers} == {("agent", "2.3.0", True, "2.4.0")}
    assert shadow.stage_name == "shadow"


def test_canary_sends_about_five_percent_to_version_two_and_none_to_humans(two_versions, operator, manager):
    v1, v2 = two_versions
    _promote_to(rollout_start(actor=operator, version=v2, plan=FAST_PLAN), "canary", operator, manager)
    share = _where(v1.agent)
    assert ("human", None) not in share
    assert abs(share[("agent", "2.4.0")] / 10_000 - 0.05) < 0.01
    assert share[("agent", "2.4.0")] + share[("agent", "2.3.0")] == 10_000


def test_rollback_returns_every_key_to_version_one(two_versions, operator, manager):
    v1, v2 = two_versions
    canary = _promote_to(rollout_start(actor=operator, version=v2, plan=FAST_PLAN), "expand-25", operator, manager)
    rollout_rollback(actor=operator, rollout=canary, reason="regressions on refunds")
    assert _where(v1.agent) == {("agent", "2.3.0"): 10_000}


def test_completion_moves_every_key_to_version_two_and_keeps_the_lineage(two_versions, operator, manager):
    v1, v2 = two_versions
    _complete(v2, operator, manager)
    assert _where(v1.agent) == {("agent", "2.4.0"): 10_000}
    lineage = list(ProductionChange.objects.filter(agent=v1.agent).order_by("at").values_list(
        "from_version__version", "to_version__version", "kind"))
    assert lineage == [(None, "2.3.0", "completed"), ("2.3.0", "2.4.0", "completed")]


def test_revert_returns_every_key_to_version_one_and_is_audited(two_versions, operator, manager, api_client_for):
    v1, v2 = two_versions
    completed = _complete(v2, operator, manager)
    response = api_client_for(operator).post(f"/api/v1/agents/{v1.agent.slug}/revert", {"reason": "2.4.0 mislabels refunds"})
    assert response.status_code == 200, response.content
    assert response.json() | {"since": None} == {"agent": v1.agent.slug, "handler": "agent", "version": "2.3.0",
                                                 "since": None, "reverted_from": "2.4.0", "rollout": completed.pk}
    assert _where(v1.agent) == {("agent", "2.3.0"): 10_000}
    entry = AuditEntry.objects.get(action="agent.production_reverted")
    assert entry.actor_label.startswith(operator.username) and entry.after["reason"] == "2.4.0 mislabels refunds"
    completed.refresh_from_db()
    assert completed.state == "reverted"
    assert completed.transitions.filter(action="revert", reason="2.4.0 mislabels refunds").exists()
    shown = api_client_for(operator).get(f"/api/v1/agents/{v1.agent.slug}").json()
    assert shown["in_production"]["version"] == "2.3.0" and shown["lineage"][0]["how"] == "reverted"


def test_revert_is_refused_while_a_candidate_is_compared_with_the_incumbent(two_versions, operator, manager):
    v1, v2 = two_versions
    _promote_to(rollout_start(actor=operator, version=v2, plan=FAST_PLAN), "canary", operator, manager)
    from rolloutops.exceptions import Conflict

    with pytest.raises(Conflict, match="roll it back first"):
        production_revert(actor=operator, agent=Agent.objects.get(pk=v1.agent_id), reason="panic")


def test_revert_with_no_earlier_incumbent_is_refused(api_client_for, operator):
    agent = AgentFactory()
    response = api_client_for(operator).post(f"/api/v1/agents/{agent.slug}/revert", {"reason": "why not"})
    assert response.status_code == 409 and "no earlier incumbent" in response.json()["detail"]


def test_in_shadow_both_versions_decisions_on_one_request_are_stored_and_paired(two_versions, operator, manager):
    v1, v2 = two_versions
    shadow = _promote_to(rollout_start(actor=operator, version=v2, plan=FAST_PLAN), "shadow", operator, manager)
    now = timezone.now().isoformat()
    slug = v1.agent.slug
    result = events_ingest(events=[
        {"agent": slug, "request_key": "claim-77", "kind": "agent", "label": "fast-track", "occurred_at": now},  # v1 acts
        {"agent": slug, "request_key": "claim-77", "kind": "agent", "label": "investigate", "occurred_at": now,
         "version": "2.4.0"},  # v2 beside it
        {"agent": slug, "request_key": "claim-77", "kind": "human", "label": "investigate", "occurred_at": now},
    ])
    assert (result.accepted, result.errors) == (3, [])
    events_fold()
    stored = dict(Event.objects.filter(request_key="claim-77", kind="agent").values_list("version__version", "arm"))
    assert stored == {"2.3.0": "control", "2.4.0": "candidate"}
    assert set(PairHour.objects.filter(rollout=shadow).values_list("reference", "agent_label", "reference_label")) == {
        ("incumbent", "investigate", "fast-track"), ("human", "investigate", "investigate")}
    against_incumbent = rollout_discrepancy(rollout_id=shadow.pk, against="incumbent")
    assert (against_incumbent["pairs"], against_incumbent["agreements"]) == (1, 0)
    assert rollout_discrepancy(rollout_id=shadow.pk)["against"] == "human"  # humans first where they decided
    assert DiscrepantPair.objects.get(rollout=shadow).reference == "incumbent"


def test_the_routing_snapshot_matches_route_and_answers_304_while_unchanged(two_versions, operator, manager, api_client_for):
    v1, v2 = two_versions
    _promote_to(rollout_start(actor=operator, version=v2, plan=FAST_PLAN), "canary", operator, manager)
    runtime = api_client_for(operator, "route:read")
    response = runtime.get("/api/v1/routing")
    assert response.status_code == 200 and response["ETag"]
    entry = response.json()["agents"][v1.agent.slug]
    assert entry["incumbent"] == {"handler": "agent", "version": "2.3.0"}
    assert (entry["rollout"]["candidate"], entry["rollout"]["mode"], entry["rollout"]["traffic_percent"]) == ("2.4.0", "live", 5.0)
    again = runtime.get("/api/v1/routing", headers={"If-None-Match": response["ETag"]})
    assert again.status_code == 304 and again.content == b""
    rollout_rollback(actor=operator, rollout=Rollout.objects.get(version=v2), reason="enough")
    changed = runtime.get("/api/v1/routing", headers={"If-None-Match": response["ETag"]})
    assert changed.status_code == 200 and changed.json()["agents"][v1.agent.slug]["rollout"] is None


def test_pages_say_who_is_in_production_and_what_it_is_compared_with(two_versions, operator, manager, client):
    v1, v2 = two_versions
    canary = _promote_to(rollout_start(actor=operator, version=v2, plan=FAST_PLAN), "canary", operator, manager)
    client.force_login(operator)
    overview = client.get("/").content.decode()
    assert "2.3.0" in overview and "2.4.0" in overview
    agent_page = client.get(f"/agents/{v1.agent.slug}/").content.decode()
    assert "In production over time" in agent_page and "candidate <strong>2.4.0</strong> at canary" in agent_page
    rollout_page = client.get(f"/rollouts/{canary.pk}/").content.decode()
    assert "against the incumbent" in rollout_page and "<strong>2.3.0</strong>" in rollout_page


def test_operator_reverts_from_the_agent_page(two_versions, operator, manager, client):
    v1, v2 = two_versions
    _complete(v2, operator, manager)
    client.force_login(operator)
    response = client.post(f"/rollouts/revert/{v1.agent.slug}/", {"reason": "refunds mislabelled"}, follow=True)
    assert "Production reverted: every request now goes to 2.3.0" in response.content.decode()
    assert Agent.objects.get(pk=v1.agent_id).production_version_id == v1.pk
    assert route(v1.agent.slug, "any").version == "2.3.0"
