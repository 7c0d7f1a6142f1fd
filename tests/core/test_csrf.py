"""A signed-in browser's API calls that change state need the CSRF token; token calls do not.

Without it, any page the person visits could post to the API with their session cookie: a page on
another port rolled a rollout back with a `text/plain` fetch, which needs no preflight."""
import pytest
from django.test import Client

from rollouts.models import Rollout, RolloutState, StageMode
from rolloutops.models import ApiToken
from rolloutops.tokens import token_issue, token_revoke
from tests.telemetry.factories import rollout_with_history

pytestmark = pytest.mark.django_db

BODY = '{"reason": "clicked a link on another site"}'


@pytest.fixture
def live_rollout(db):
    return rollout_with_history(stages=(("staging", StageMode.OFF, 0), ("canary", StageMode.LIVE, 5)))


@pytest.fixture
def browser(operator):
    """A browser signed in as an operator, with Django's CSRF checks on (the test client skips them)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    return client


def _rollback(client, rollout, **headers):
    return client.post(f"/api/v1/rollouts/{rollout.pk}/rollback", BODY, content_type="text/plain", headers=headers)


def test_a_cross_site_text_plain_post_with_the_session_cookie_is_refused(browser, live_rollout):
    response = _rollback(browser, live_rollout)
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert Rollout.objects.get(pk=live_rollout.pk).state == RolloutState.ACTIVE


def test_the_same_call_from_our_page_with_the_csrf_token_goes_through(browser, live_rollout):
    browser.get("/")  # a page of ours sets the CSRF cookie; its script sends the token as a header
    token = browser.cookies["csrftoken"].value
    response = _rollback(browser, live_rollout, **{"X-CSRFToken": token})
    assert response.status_code == 200, response.content
    assert Rollout.objects.get(pk=live_rollout.pk).state == RolloutState.ROLLED_BACK


def test_reads_with_the_session_need_no_csrf_token(browser, live_rollout):
    assert browser.get(f"/api/v1/rollouts/{live_rollout.pk}").status_code == 200


def test_a_bearer_token_needs_no_csrf_token(operator, live_rollout):
    _, raw = token_issue(user=operator, scopes="user", name="script")
    client = Client(enforce_csrf_checks=True)
    response = _rollback(client, live_rollout, Authorization=f"Bearer {raw}")
    assert response.status_code == 200, response.content
    assert Rollout.objects.get(pk=live_rollout.pk).state == RolloutState.ROLLED_BACK


def test_a_revoked_token_on_a_write_is_still_401_not_a_csrf_403(operator, live_rollout):
    token, raw = token_issue(user=operator, scopes="user", name="script")
    token_revoke(token=ApiToken.objects.get(pk=token.pk), actor=operator)
    response = _rollback(Client(enforce_csrf_checks=True), live_rollout, Authorization=f"Bearer {raw}")
    assert response.status_code == 401


def test_a_signed_out_browser_write_is_401(live_rollout):
    assert _rollback(Client(enforce_csrf_checks=True), live_rollout).status_code == 401
