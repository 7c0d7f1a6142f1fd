"""Management commands people and scripts rely on: adduser, issue_token, revoke_token."""
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from rolloutops.models import ApiToken, AuditEntry
from rolloutops.policy import user_roles
from rolloutops.tokens import hash_token

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_adduser_creates_a_person_with_the_role_and_a_usable_password():
    out, _ = run("adduser", "nora", "--role", "operator", "--password", "long-enough-pass")
    user = get_user_model().objects.get(username="nora")
    assert user_roles(user) == {"operator"}
    assert user.check_password("long-enough-pass")
    assert "Created nora" in out
    signed_in = Client().post("/login/", {"username": "nora", "password": "long-enough-pass"})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/"
    assert AuditEntry.objects.filter(action="user.created", object_repr="nora").exists()


def test_adduser_without_password_gives_an_account_that_cannot_sign_in():
    run("adduser", "bot-owner", "--role", "operator")
    user = get_user_model().objects.get(username="bot-owner")
    assert not user.has_usable_password()


def test_adduser_adds_a_role_to_an_existing_person(operator):
    run("adduser", "olivia", "--role", "manager")
    assert user_roles(get_user_model().objects.get(username="olivia")) == {"operator", "manager"}


def test_adduser_refuses_an_unknown_role():
    with pytest.raises(CommandError, match="invalid choice"):
        run("adduser", "zed", "--role", "admin")
    assert not get_user_model().objects.filter(username="zed").exists()


def test_role_groups_exist_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= {"operator", "reviewer", "manager"}


def test_issued_token_authenticates_and_only_its_hash_is_stored(operator, client):
    out, err = run("issue_token", "olivia", "--scopes", "user", "--name", "cli")
    raw = out.strip()
    assert raw.startswith("rlo_")
    assert "cannot be shown again" in err
    token = ApiToken.objects.get(name="cli")
    assert token.token_hash == hash_token(raw)
    assert raw not in (token.prefix, token.name, token.token_hash)
    response = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200
    assert any(e["action"] == "token.issued" for e in response.json()["results"])


def test_issue_token_refuses_unknown_scopes_and_unknown_users(operator):
    with pytest.raises(CommandError, match="unknown scope"):
        run("issue_token", "olivia", "--scopes", "admin")
    with pytest.raises(CommandError, match="no user"):
        run("issue_token", "nobody", "--scopes", "user")
    assert not ApiToken.objects.exists()


def test_revoked_token_gets_401(operator, client):
    raw = run("issue_token", "olivia", "--scopes", "user", "--name", "ci")[0].strip()
    out, _ = run("revoke_token", "ci")
    assert "revoked" in out
    response = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 401
    assert AuditEntry.objects.filter(action="token.revoked").count() == 1


def test_revoke_token_by_prefix(operator):
    run("issue_token", "olivia", "--scopes", "route:read", "--name", "runtime")
    prefix = ApiToken.objects.get(name="runtime").prefix
    run("revoke_token", prefix)
    assert ApiToken.objects.get(name="runtime").revoked_at is not None


def test_revoke_token_of_nothing_says_so():
    with pytest.raises(CommandError, match="no active token"):
        run("revoke_token", "ghost")
