"""Pages: the agents list, an agent, the readiness matrix and its evaluation form (htmx and plain)."""
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import AgentVersion, ChecklistItem, Evaluation
from agents.services import evaluation_record
from rollouts.models import Rollout
from tests.agents.conftest import all_pass_results
from tests.factories import AgentFactory, AgentVersionFactory

pytestmark = pytest.mark.django_db

MATRIX = "/agents/claims-triage/versions/1.4.0/"
POST = MATRIX + "evaluations/"


def test_agent_list_shows_agents_with_rollout_and_readiness(client, operator, version):
    rollout = Rollout.objects.create(agent=version.agent, version=version, stage_name="canary", traffic_percent=5,
                                     mode="live", started_by=operator)
    AgentFactory(slug="idle-agent", owner_team="billing")
    client.force_login(operator)
    body = client.get("/agents/").content.decode()
    assert "claims-triage" in body and "idle-agent" in body
    assert f'href="/rollouts/{rollout.pk}/"' in body
    assert "not ready" in body
    assert "no version" in body


def test_agent_list_filters_by_team_search_and_readiness_with_an_htmx_partial(client, reviewer, version):
    AgentFactory(slug="idle-agent", owner_team="billing")
    client.force_login(reviewer)
    response = client.get("/agents/", {"team": "billing"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "<html" not in body
    assert "idle-agent" in body and "claims-triage" not in body
    assert "claims-triage" in client.get("/agents/", {"q": "claims"}).content.decode()
    assert "idle-agent" not in client.get("/agents/", {"readiness": "not-ready"}).content.decode()
    assert "No agents match" in client.get("/agents/", {"q": "zzz"}).content.decode()


def test_agent_list_empty_state(client, reviewer):
    client.force_login(reviewer)
    assert "No agents registered yet" in client.get("/agents/").content.decode()


def test_agent_page_lists_versions_and_rollouts(client, manager, version, operator):
    rollout = Rollout.objects.create(agent=version.agent, version=version, state="rolled_back", started_by=operator)
    client.force_login(manager)
    body = client.get("/agents/claims-triage/").content.decode()
    assert 'href="/agents/claims-triage/versions/1.4.0/"' in body
    assert f'href="/rollouts/{rollout.pk}/"' in body
    assert client.get("/agents/ghost/").status_code == 404


def test_matrix_renders_for_a_version_without_evaluations(client, operator, version):
    client.force_login(operator)
    response = client.get(MATRIX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "security.encryption: not evaluated" in body
    assert "performance.p95_latency: unknown — 0 samples, needs 100" in body
    assert 'hx-post="/agents/claims-triage/versions/1.4.0/evaluations/"' in body


def test_matrix_shows_evaluations_evidence_and_expiring_marks(client, reviewer, operator, version):
    evaluation_record(actor=operator, version=version, ttl_days=10, results=[
        {"item": "security.encryption", "status": "pass", "evidence": "https://wiki.test/tls"},
        {"item": "security.least_privilege", "status": "fail", "evidence": "shared admin key"}])
    client.force_login(reviewer)
    body = client.get(MATRIX).content.decode()
    assert 'href="https://wiki.test/tls"' in body
    assert "shared admin key" in body
    assert "by olivia" in body
    assert "expires" in body
    assert "security.least_privilege: failed on evaluation" in body
    assert "hx-post" not in body  # read-only for reviewers
    assert "Read-only" in body


def test_matrix_marks_expired_evaluations(client, operator, version):
    evaluation = evaluation_record(actor=operator, version=version, results=all_pass_results())
    Evaluation.objects.filter(pk=evaluation.pk).update(expires_at=timezone.now() - timedelta(days=1))
    client.force_login(operator)
    body = client.get(MATRIX).content.decode()
    assert "security.encryption: expired on" in body


def test_htmx_evaluation_post_records_and_returns_the_matrix_partial(client, operator, version):
    client.force_login(operator)
    response = client.post(POST, {"status:security.encryption": "pass", "evidence:security.encryption": "TLS",
                                  "status:security.auditable_access": "", "notes": "spot check"},
                           headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="matrix">')
    assert "Recorded evaluation" in body
    evaluation = Evaluation.objects.get()
    assert [r.item.key for r in evaluation.results.all()] == ["security.encryption"]
    assert evaluation.notes == "spot check"


def test_htmx_evaluation_post_with_nothing_chosen_shows_why_in_the_partial(client, operator, version):
    client.force_login(operator)
    response = client.post(POST, {"status:security.encryption": ""}, headers={"HX-Request": "true"})
    assert "Nothing recorded" in response.content.decode()
    assert not Evaluation.objects.exists()


def test_plain_evaluation_post_redirects_back_with_a_message(client, operator, version):
    client.force_login(operator)
    response = client.post(POST, {"status:security.encryption": "fail"})
    assert response.status_code == 302
    assert response["Location"] == MATRIX
    assert "Recorded evaluation" in client.get(MATRIX).content.decode()


def test_non_operators_cannot_post_evaluations(client, reviewer, manager, version):
    for person in (reviewer, manager):
        client.force_login(person)
        assert client.post(POST, {"status:security.encryption": "pass"}).status_code == 403
    assert not Evaluation.objects.exists()


def test_operator_adds_a_checklist_item_from_the_matrix(client, operator, version):
    client.force_login(operator)
    response = client.post(MATRIX + "checklist/", {"dimension": "security", "key": "security.pii_redaction",
                                                   "title": "PII redacted"})
    assert response.status_code == 302
    assert ChecklistItem.objects.filter(key="security.pii_redaction").exists()
    assert "security.pii_redaction: not evaluated" in client.get(MATRIX).content.decode()


def test_operator_registers_agent_and_adds_version_from_pages(client, operator):
    client.force_login(operator)
    response = client.post("/agents/new/", {"slug": "new-bot", "name": "New bot", "owner_team": "ops"})
    assert response["Location"] == "/agents/new-bot/"
    response = client.post("/agents/new-bot/versions/new/", {"version": "0.1.0", "sla_p95_latency_ms": "900"})
    assert response["Location"] == "/agents/new-bot/versions/0.1.0/"
    assert client.get("/agents/new-bot/versions/0.1.0/").status_code == 200


def test_agent_list_query_count_grows_by_a_handful_per_agent(client, operator, django_assert_max_num_queries):
    for n in range(5):
        AgentVersionFactory(agent__slug=f"a{n}")
    client.force_login(operator)
    with django_assert_max_num_queries(12 + 5 * 6):
        assert client.get("/agents/").status_code == 200


def test_matrix_page_query_count_does_not_grow_with_items(client, operator, version, django_assert_max_num_queries):
    evaluation_record(actor=operator, version=version, results=all_pass_results())
    for n in range(10):
        ChecklistItem.objects.create(key=f"security.extra_{n}", dimension="security", title=f"extra {n}")
    client.force_login(operator)
    with django_assert_max_num_queries(16):
        assert client.get(MATRIX).status_code == 200


def test_agents_list_works_out_readiness_for_the_shown_page_only(client, operator, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import AgentVersionFactory

    client.force_login(operator)

    def queries() -> int:
        from django.core.cache import cache

        cache.clear()  # no automatic figures reused from a previous request
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/agents/").status_code == 200
        return len(captured)

    for _ in range(30):
        AgentVersionFactory()
    with_30 = queries()
    for _ in range(30):
        AgentVersionFactory()
    assert queries() == with_30  # 60 agents, still one page of 25 verdicts


@pytest.mark.parametrize("latency", ["99999999999", "99999999999999999999999", "3600001", "0"])
def test_a_latency_sla_past_an_hour_is_refused_with_a_message_not_a_500(client, operator, latency):
    client.force_login(operator)
    client.post("/agents/new/", {"slug": "sla-bot", "name": "SLA bot", "owner_team": "ops"})
    response = client.post("/agents/sla-bot/versions/new/", {"version": "0.1.0", "sla_p95_latency_ms": latency},
                           follow=True)
    assert response.status_code == 200
    assert "from 1 to 3,600,000" in response.content.decode()
    assert not AgentVersion.objects.filter(agent__slug="sla-bot").exists()
