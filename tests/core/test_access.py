"""Roles on pages and the API; token scopes; revoked and expired tokens."""
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from rolloutops.models import ApiToken
from rolloutops.tokens import token_authenticate, token_issue, token_revoke

pytestmark = pytest.mark.django_db


def test_anonymous_page_visit_redirects_to_login(client):
    response = client.get("/audit/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/audit/")


def test_anonymous_api_call_gets_401_json(client):
    response = client.get("/api/v1/audit")
    assert response.status_code == 401
    assert "detail" in response.json()


def test_reviewer_cannot_open_audit_page(client, reviewer):
    client.force_login(reviewer)
    assert client.get("/audit/").status_code == 403


def test_operator_and_manager_open_audit_page(client, operator, manager):
    for person in (operator, manager):
        client.force_login(person)
        assert client.get("/audit/").status_code == 200


def test_session_works_on_api_for_people(client, manager):
    client.force_login(manager)
    assert client.get("/api/v1/audit").status_code == 200


def test_reviewer_is_refused_audit_api_with_403(api_client_for, reviewer):
    response = api_client_for(reviewer, "user").get("/api/v1/audit")
    assert response.status_code == 403
    assert "role" in response.json()["detail"]


def test_token_without_user_scope_cannot_act_as_its_owner(api_client_for, operator):
    response = api_client_for(operator, "route:read").get("/api/v1/audit")
    assert response.status_code == 403
    assert "scope" in response.json()["detail"]


def test_token_with_user_scope_acts_within_owner_role(api_client_for, operator):
    assert api_client_for(operator, "user").get("/api/v1/audit").status_code == 200


def test_revoked_token_is_refused(api_client_for, operator):
    client = api_client_for(operator, "user")
    token = ApiToken.objects.get(user=operator)
    token_revoke(token=token, actor=operator)
    assert client.get("/api/v1/audit").status_code == 401


def test_expired_token_is_refused(api_client_for, operator):
    client = api_client_for(operator, "user")
    ApiToken.objects.filter(user=operator).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/v1/audit").status_code == 401


def test_unknown_token_is_refused(client):
    response = client.get("/api/v1/audit", headers={"Authorization": "Bearer rlo_not-a-real-token"})
    assert response.status_code == 401


def test_only_the_hash_of_a_token_is_stored(operator):
    token, raw = token_issue(user=operator, scopes="user", name="script")
    stored = ApiToken.objects.get(pk=token.pk)
    assert raw not in (stored.token_hash, stored.prefix, stored.name)
    assert len(stored.token_hash) == 64


def test_token_of_a_deactivated_user_is_refused(api_client_for, operator):
    client = api_client_for(operator, "user")
    operator.is_active = False
    operator.save()
    assert client.get("/api/v1/audit").status_code == 401


def test_revoking_a_token_in_use_refuses_it_at_once(api_client_for, operator):
    client = api_client_for(operator, "user")
    assert client.get("/api/v1/audit").status_code == 200  # now cached
    token_revoke(token=ApiToken.objects.get(user=operator), actor=operator)
    assert client.get("/api/v1/audit").status_code == 401


def test_a_token_in_use_costs_no_query_and_no_shared_cache_call(operator, django_assert_num_queries):
    from django.core.cache import cache

    _, raw = token_issue(user=operator, scopes="route:read", name="runtime")
    assert token_authenticate(raw) is not None  # now held by this process
    cache.clear()  # the shared cache holds nothing now
    with django_assert_num_queries(0):
        token = token_authenticate(raw)
    assert (token.name, token.user.get_username(), sorted(token.user._rolloutops_roles)) == ("runtime", "olivia",
                                                                                             ["operator"])


def test_another_process_refuses_a_revoked_token_within_a_second_whatever_the_shared_cache_holds(operator):
    """A web process that held the token before another one revoked it: it re-reads the tokens'
    generation at most a second later, and entries of the old generation are never read again."""
    from django.core.cache import cache

    from rolloutops import tokens

    _, raw = token_issue(user=operator, scopes="user", name="runtime")
    assert token_authenticate(raw) is not None
    held, generation = dict(tokens._local.entries), tokens._local.generation
    token_revoke(token=ApiToken.objects.get(name="runtime"), actor=operator)
    # This process as if it had not seen the commit (another worker), its shared cache entry restored.
    tokens._local.entries, tokens._local.generation = held, generation
    digest = tokens.hash_token(raw)
    cache.set(tokens._cache_key(digest, generation), held[digest][0])
    assert token_authenticate(raw) is not None  # within the second: still the old state
    tokens._local.checked_at = time.monotonic() - tokens.GENERATION_CHECK_S
    assert token_authenticate(raw) is None
