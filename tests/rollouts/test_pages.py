"""Rollout pages: the list, the rollout page and its live panel, the approvals inbox."""
import pytest

from rollouts.models import PromotionRequest, Rollout
from rollouts.promotions import promotion_request

pytestmark = pytest.mark.django_db


def test_list_has_an_empty_state(client, operator):
    client.force_login(operator)
    response = client.get("/rollouts/")
    assert response.status_code == 200 and b"No rollouts match" in response.content


def test_list_filters_by_state_and_htmx_gets_only_the_table(client, operator, fast_rollout):
    client.force_login(operator)
    page = client.get("/rollouts/", {"state": "active"})
    assert fast_rollout.agent.slug.encode() in page.content and b"<html" in page.content
    partial = client.get("/rollouts/", {"state": "rolled_back"}, headers={"HX-Request": "true"})
    assert b"<html" not in partial.content and b"No rollouts match" in partial.content


def test_rollout_page_shows_stages_gates_and_history(client, manager, fast_rollout):
    client.force_login(manager)
    response = client.get(f"/rollouts/{fast_rollout.pk}/")
    body = response.content.decode()
    assert response.status_code == 200
    for text in ("staging", "expand-50", "Gate to the next stage", "History", "rollout started"):
        assert text in body
    assert "Request promotion" not in body  # managers do not request


def test_live_panel_partial_and_polling_stops_when_rolled_back(client, operator, fast_rollout):
    client.force_login(operator)
    live = client.get(f"/rollouts/{fast_rollout.pk}/", headers={"HX-Request": "true"})
    assert live.status_code == 200 and b'id="live-panel"' in live.content and b"<html" not in live.content
    client.post(f"/rollouts/{fast_rollout.pk}/rollback/", {"reason": "bad outputs"})
    ended = client.get(f"/rollouts/{fast_rollout.pk}/", headers={"HX-Request": "true"})
    assert ended.status_code == 286  # htmx: stop polling
    assert Rollout.objects.get(pk=fast_rollout.pk).state == "rolled_back"


def test_operator_requests_promotion_from_the_page(client, operator, fast_rollout):
    client.force_login(operator)
    response = client.post(f"/rollouts/{fast_rollout.pk}/promote/", {"reason": "ready"}, follow=True)
    assert b"requested; a manager decides" in response.content
    assert PromotionRequest.objects.filter(rollout=fast_rollout, status="pending").exists()


def test_rollback_without_reason_shows_the_error(client, operator, fast_rollout):
    client.force_login(operator)
    response = client.post(f"/rollouts/{fast_rollout.pk}/rollback/", {"reason": ""}, follow=True)
    assert b"a reason is required" in response.content
    assert Rollout.objects.get(pk=fast_rollout.pk).state == "active"


def test_approvals_inbox_shows_evidence_and_manager_approves(client, operator, manager, fast_rollout):
    promotion = promotion_request(actor=operator, rollout=fast_rollout)
    client.force_login(manager)
    inbox = client.get("/rollouts/approvals/")
    body = inbox.content.decode()
    assert f"promotion-{promotion.pk}" in body and "Approve" in body and "Readiness" in body
    response = client.post(f"/rollouts/promotions/{promotion.pk}/approve/", {"comment": "fine"}, follow=True)
    assert b"Approved" in response.content
    assert Rollout.objects.get(pk=fast_rollout.pk).stage_name == "shadow"


def test_requester_sees_no_approve_button_on_own_request(client, operator, fast_rollout):
    promotion_request(actor=operator, rollout=fast_rollout)
    client.force_login(operator)
    body = client.get("/rollouts/approvals/").content.decode()
    assert "You requested this" in body and ">Approve<" not in body


def test_reviewer_cannot_open_the_approvals_inbox(client, reviewer):
    client.force_login(reviewer)
    assert client.get("/rollouts/approvals/").status_code == 403


def test_empty_inbox(client, manager):
    client.force_login(manager)
    assert b"Nothing waits for a decision" in client.get("/rollouts/approvals/").content


def test_rollout_page_draws_the_guardrail_chart_from_rollups(client, operator, manager, fast_rollout):
    from django.utils import timezone

    from rollouts.promotions import promotion_approve
    from telemetry.fold import events_fold
    from telemetry.services import events_ingest

    for _ in range(2):
        promotion_approve(actor=manager, promotion=promotion_request(actor=operator, rollout=Rollout.objects.get(pk=fast_rollout.pk)))
    events_ingest(events=[{"agent": fast_rollout.agent.slug, "request_key": f"k{i}", "kind": "agent", "label": "a",
                           "occurred_at": timezone.now().isoformat(), "outcome": "error" if i % 10 == 0 else "ok"}
                          for i in range(50)])
    events_fold()
    client.force_login(operator)
    body = client.get(f"/rollouts/{fast_rollout.pk}/").content.decode()
    assert 'data-figure="guardrail-figure"' in body and "error rate limit 5%" in body and "promote \\u2192 canary" in body


def test_operator_starts_a_rollout_from_the_version_page(client, operator, ready_version):
    client.force_login(operator)
    page = client.get(f"/agents/{ready_version.agent.slug}/versions/{ready_version.version}/").content.decode()
    assert "Start a rollout of" in page
    response = client.post("/rollouts/start/", {"agent": ready_version.agent.slug, "version": ready_version.version}, follow=True)
    rollout = Rollout.objects.get(version=ready_version)
    assert response.redirect_chain[-1][0] == f"/rollouts/{rollout.pk}/" and rollout.stage_name == "staging"
    again = client.post("/rollouts/start/", {"agent": ready_version.agent.slug, "version": ready_version.version}, follow=True)
    assert b"already has an open rollout" in again.content


def test_htmx_approval_answers_the_card_in_place(client, operator, manager, fast_rollout):
    promotion = promotion_request(actor=operator, rollout=fast_rollout)
    client.force_login(manager)
    response = client.post(f"/rollouts/promotions/{promotion.pk}/approve/", {"comment": ""}, headers={"HX-Request": "true"})
    body = response.content.decode()
    # Out of band only: this card's figures say what became of it, its form goes, the message and
    # the recent decisions arrive; nothing else on the page (other cards, what is typed) is touched.
    assert response.status_code == 200 and "<html" not in body and 'id="inbox"' not in body
    assert f'id="promotion-{promotion.pk}-figures" hx-swap-oob="morph"' in body and "Nothing left to decide here" in body
    assert f'id="promotion-{promotion.pk}-decide" hx-swap-oob="morph"' in body and "Approve</button>" not in body
    assert 'id="messages"' in body and "Approved:" in body
    assert "promotionDecided" in response["HX-Trigger"]
    assert "Recent decisions" in body and f"<td>{promotion.pk}</td>" in body  # the decision joins the list at once
