"""Sign-in throttling: ten wrong passwords for one username from one address lock that pair out
for fifteen minutes — a clear page, the right password refused meanwhile — and it is audited."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from rolloutops.models import AuditEntry
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-9"  # tests/factories.py


def sign_in(client, username, password, ip="10.1.1.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.fixture
def olivia():
    return UserFactory(username="olivia", roles=["operator"])


def test_nine_failures_then_the_right_password_signs_in(olivia):
    client = Client()
    for _ in range(9):
        assert sign_in(client, "olivia", "wrong-password").status_code == 200  # the form again
    response = sign_in(client, "olivia", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_tenth_failure_locks_the_pair_out_and_the_right_password_is_refused(olivia):
    client = Client()
    for _ in range(9):
        sign_in(client, "olivia", "wrong-password")
    locked = sign_in(client, "olivia", "wrong-password")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Sign-in locked for 15 minutes" in page and "After 10 wrong passwords for <strong>olivia</strong>" in page
    refused = sign_in(client, "olivia", PASSWORD)
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session

    # Every failure is audited, the lockout once, with who and from where.
    assert AuditEntry.objects.filter(action="auth.login_failed", object_repr="olivia").count() == 11
    lockout = AuditEntry.objects.get(action="auth.locked_out")
    assert (lockout.object_repr, lockout.object_id, lockout.source_ip) == ("olivia", str(olivia.pk), "10.1.1.1")
    assert lockout.after == {"username": "olivia", "failures": 10, "locked_minutes": 15}


def test_the_lockout_is_per_username_and_address(olivia):
    UserFactory(username="oscar", roles=["operator"])
    client = Client()
    for _ in range(10):
        sign_in(client, "olivia", "wrong-password", ip="10.1.1.1")
    assert sign_in(Client(), "olivia", PASSWORD, ip="10.9.9.9").status_code == 302  # olivia elsewhere
    assert sign_in(Client(), "oscar", PASSWORD, ip="10.1.1.1").status_code == 302  # someone else, same address


def test_the_lockout_ends_after_fifteen_minutes(olivia):
    from axes.models import AccessAttempt

    client = Client()
    for _ in range(10):
        sign_in(client, "olivia", "wrong-password")
    assert sign_in(client, "olivia", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=1))
    assert sign_in(client, "olivia", PASSWORD).status_code == 302
