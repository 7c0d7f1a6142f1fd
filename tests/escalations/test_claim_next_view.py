"""POST /api/v1/escalations/claim-next: its usual call is answered by a plain view ahead of
django-ninja, everything else by the operation (console/api.py). Every case here is asked of both,
from the same queue at the same moment, and must get the same status, content type and body."""
from datetime import datetime, timedelta, timezone as dt_timezone
from unittest import mock

import pytest
from django.test import Client

import console.api as console_api
from escalations.models import EscalationTicket, TicketStatus
from tests.core.test_outages import database_down  # noqa: F401 - fixture
from tests.factories import UserFactory
from tests.served_first import served_and_specified

pytestmark = pytest.mark.django_db

PATH = "/api/v1/escalations/claim-next"
MOMENT = datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=dt_timezone.utc)


def _both(client, body=b"{}", headers=None, *, content_type="application/json", method="post"):
    # Both from the same queue at the same moment.
    with mock.patch("django.utils.timezone.now", return_value=MOMENT):
        return served_and_specified(client, PATH, body, headers, content_type=content_type, method=method)


@pytest.fixture
def queue(make_ticket, reviewer2):
    tickets = [make_ticket(priority="P2"), make_ticket(priority="P1", reason="policy")]
    lapsed = make_ticket(priority="P3")
    EscalationTicket.objects.filter(pk=lapsed.pk).update(
        status=TicketStatus.CLAIMED, claimed_by=reviewer2, claimed_at=MOMENT - timedelta(hours=1),
        lease_expires_at=MOMENT - timedelta(minutes=1))
    return tickets


def test_the_served_claim_answers_as_the_specified_operation(queue, agent, reviewer, operator, bearer_headers):
    tokens = {name: bearer_headers(user, scopes, name) for name, user, scopes in (
        ("reviewer", reviewer, "user"), ("events", reviewer, "events:write"), ("operator", operator, "user"),
        ("no-role", UserFactory(username="nobody", roles=[]), "user"))}
    rita = tokens["reviewer"]
    cases = [
        (b"{}", rita), (b"", rita), (b'{"priority": "P1"}', rita), (b'{"priority": "P2"}', rita),
        (b'{"priority": "P3"}', rita),  # the lapsed claim: the transaction that records its lapse
        (b'{"priority": "P4"}', rita),  # nothing claimable: 204
        (b'{"reason": "policy"}', rita), (b'{"agent": "%s"}' % agent.slug.encode(), rita),
        (b'{"agent": "ghost"}', rita), (b'{"agent": null, "reason": null, "priority": null}', rita),
        (b'{"priority": "P9"}', rita), (b'{"agent": 5}', rita), (b'{"agent": "%s"}' % (b"a" * 65), rita),
        (b'{"zzz": 1}', rita), (b"null", rita), (b"[]", rita), (b"{not json", rita), (b'"P1"', rita),
        (b"{}", tokens["events"]), (b"{}", tokens["no-role"]), (b"{}", tokens["operator"]),
        (b"{}", {"Authorization": "Bearer rlo_not-a-token"}), (b"{}", {"Authorization": "Basic b2xpdmlhOnB3"}),
        (b"{}", {"Authorization": rita["Authorization"].replace("Bearer", "bearer")}), (b"{}", {}),
    ]
    client = Client()
    statuses, answered_by_the_view = set(), []
    serve = console_api._claim_next_served

    def spy(request):
        answer = serve(request)
        answered_by_the_view.append(answer is not None)
        return answer

    for body, headers in cases:
        with mock.patch.object(console_api, "_claim_next_served", spy):
            served, specified = _both(client, body, headers)
        assert served == specified, (body, headers)
        statuses.add(served[0])
    assert statuses == {200, 204, 400, 401, 403, 422}
    # The usual calls (a reviewer's token, filters or none: the first ten, and the scheme written in
    # lower case, which both accept) never reached django-ninja; every other call did.
    assert answered_by_the_view == [True] * 10 + [False] * 13 + [True, False]
    for content_type, body in (("text/plain", b"{}"), ("application/x-www-form-urlencoded", b"a=1"),
                               ("application/json; charset=utf-8", b"{}")):
        served, specified = _both(client, body, rita, content_type=content_type)
        assert served == specified, content_type
    for method in ("get", "put", "delete", "head", "options"):
        served, specified = _both(client, headers=rita, method=method)
        assert served == specified and served[0] == 405, method


def test_a_signed_in_reviewer_gets_the_same_answer_with_and_without_csrf(queue, reviewer):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(reviewer)
    served, specified = _both(browser)
    assert served == specified and served[0] == 403 and b"CSRF" in served[2]
    browser.get("/escalations/")  # a page sets the CSRF cookie, as the queue page does
    served, specified = _both(browser, headers={"X-CSRFToken": browser.cookies["csrftoken"].value})
    assert served == specified and served[0] == 200


def test_the_served_claim_is_recorded_as_the_operations(queue, reviewer, api_client_for):
    from rolloutops.audit import audit_seal, audit_verify
    from rolloutops.models import AuditEntry

    client = api_client_for(reviewer)
    claimed = client.post(PATH)
    assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "rita"
    entry = AuditEntry.objects.get(action="ticket.claimed")
    assert entry.actor_label.startswith("rita via token") and entry.object_id == str(claimed.json()["id"])
    audit_seal()
    assert audit_verify().intact


@pytest.mark.django_db(transaction=True)
def test_a_database_outage_is_503_with_retry_after(queue, reviewer, database_down, bearer_headers):  # noqa: F811
    runtime = Client(headers=bearer_headers(reviewer, "user", "runtime"))
    assert runtime.post(PATH, b"{}", content_type="application/json").status_code == 200
    database_down()
    response = runtime.post(PATH, b"{}", content_type="application/json")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response.json() == {"detail": "the database is unavailable; retry shortly"}
