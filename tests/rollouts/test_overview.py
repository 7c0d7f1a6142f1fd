"""The overview: every agent with its rollout, readiness, queue; live refresh as a partial."""
import pytest

from rollouts.services import rollout_rollback

pytestmark = pytest.mark.django_db


def test_overview_empty_state(client, reviewer):
    client.force_login(reviewer)
    response = client.get("/")
    assert response.status_code == 200 and b"No agents yet" in response.content


def test_overview_lists_agent_with_rollout_and_readiness(client, reviewer, fast_rollout, operator):
    rollout_rollback(actor=operator, rollout=fast_rollout, reason="bad")
    client.force_login(reviewer)
    body = client.get("/").content.decode()
    assert fast_rollout.agent.slug in body and "rolled back" in body and "ready" in body
    partial = client.get("/", headers={"HX-Request": "true"})
    assert b"<html" not in partial.content and fast_rollout.agent.slug.encode() in partial.content
