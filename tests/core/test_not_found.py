"""One way to fetch-or-404: `<entity>_get` selectors raise NotFound; pages answer the 404 page,
the API a 404 `{"detail"}`."""
import pytest

pytestmark = pytest.mark.django_db

PAGES = ["/agents/nope/", "/agents/nope/versions/1.0/", "/rollouts/999999/", "/escalations/999999/",
         "/rollouts/999999/shadow/", "/rollouts/999999/pairs/k1/"]
API = ["/api/v1/agents/nope", "/api/v1/agents/nope/versions/1.0", "/api/v1/rollouts/999999",
       "/api/v1/promotions/999999", "/api/v1/escalations/999999", "/api/v1/rollouts/999999/guardrails",
       "/api/v1/rollouts/999999/discrepancy"]


@pytest.mark.parametrize("path", PAGES)
def test_a_page_of_something_missing_is_the_404_page(client, manager, reviewer, path):
    client.force_login(reviewer if path.startswith("/escalations/") else manager)
    response = client.get(path)
    assert response.status_code == 404
    assert "Not found" in response.content.decode()


@pytest.mark.parametrize("path", API)
def test_an_api_call_for_something_missing_is_404_json(client, manager, path):
    client.force_login(manager)
    response = client.get(path)
    assert response.status_code == 404 and response.json()["detail"].startswith("no ")
