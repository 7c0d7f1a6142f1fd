"""A checklist item added to a checklist in use applies to evaluations recorded after it; a version
last evaluated before it keeps its verdict without it for the grace period (CHECKLIST_GRACE_DAYS,
default 7), then needs it evaluated. Shown on the version's matrix and in the API (agents/readiness.py)."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from agents.models import ChecklistItem
from agents.readiness import MissingResult, version_readiness
from agents.services import checklist_item_add, evaluation_record
from tests.agents.conftest import all_pass_results, healthy_telemetry
from tests.factories import AgentVersionFactory

pytestmark = pytest.mark.django_db


def _add(operator, key="fallback.pager_rota"):
    return checklist_item_add(actor=operator, dimension=key.split(".")[0], key=key, title="A pager rota exists")


def test_a_new_item_leaves_a_ready_version_ready_for_seven_days(ready_version, operator):
    before = timezone.now()
    item = _add(operator)
    assert before + timedelta(days=7) <= item.grace_until <= timezone.now() + timedelta(days=7)

    readiness = version_readiness(version=ready_version)
    assert readiness.ready and readiness.failing == []
    (verdict,) = [i for i in readiness.dimensions["fallback"].items if i.key == item.key]
    assert verdict.status == MissingResult.GRACE and verdict.ok and verdict.grace_until == item.grace_until
    assert [i.key for i in readiness.in_grace] == [item.key]

    assert version_readiness(version=ready_version, now=item.grace_until - timedelta(seconds=1)).ready
    ended = version_readiness(version=ready_version, now=item.grace_until)
    assert not ended.ready and ended.failing == [f"{item.key}: not evaluated"] and ended.in_grace == []


def test_the_item_applies_at_once_to_an_evaluation_recorded_after_it(ready_version, operator):
    item = _add(operator)
    # Renewing any item records an evaluation with the new item on the form: from then on it counts.
    evaluation_record(actor=operator, version=ready_version,
                      results=[{"item": "security.encryption", "status": "pass", "evidence": "renewed"}])
    readiness = version_readiness(version=ready_version)
    assert not readiness.ready
    assert readiness.failing == [f"{item.key}: not evaluated"]


def test_a_version_first_evaluated_after_the_item_needs_it_at_once(operator):
    item = _add(operator)
    fresh = AgentVersionFactory()
    healthy_telemetry(fresh)
    evaluation_record(actor=operator, version=fresh,
                      results=[r for r in all_pass_results() if r["item"] != item.key])
    assert version_readiness(version=fresh).failing == [f"{item.key}: not evaluated"]


def test_evaluating_the_item_in_its_grace_counts_pass_or_fail(ready_version, operator):
    item = _add(operator)
    evaluation_record(actor=operator, version=ready_version,
                      results=[{"item": item.key, "status": "fail", "evidence": "no rota"}])
    assert version_readiness(version=ready_version).failing[0].startswith(f"{item.key}: failed on evaluation")
    evaluation_record(actor=operator, version=ready_version,
                      results=[{"item": item.key, "status": "pass", "evidence": "rota"}])
    later = version_readiness(version=ready_version, now=item.grace_until + timedelta(days=1))
    assert later.ready and later.in_grace == []


def test_a_version_not_ready_for_other_reasons_stays_not_ready(version, operator):
    healthy_telemetry(version)
    evaluation_record(actor=operator, version=version, results=[
        {**r, "status": "fail"} if r["item"] == "security.encryption" else r for r in all_pass_results()])
    item = _add(operator)
    readiness = version_readiness(version=version)
    assert not readiness.ready
    assert [line.split(":")[0] for line in readiness.failing] == ["security.encryption"]
    assert [i.key for i in readiness.in_grace] == [item.key]


def test_a_grace_of_zero_days_blocks_at_once(ready_version, operator, settings):
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "CHECKLIST_GRACE_DAYS": 0}
    item = _add(operator)
    assert item.grace_until is None
    assert version_readiness(version=ready_version).failing == [f"{item.key}: not evaluated"]


def test_the_default_checklist_has_no_grace():
    assert not ChecklistItem.objects.filter(grace_until__isnull=False).exists()


def test_the_matrix_names_the_item_in_grace_and_until_when(ready_version, operator):
    item = _add(operator)
    client = Client()
    client.force_login(operator)
    page = client.get(f"/agents/{ready_version.agent.slug}/versions/{ready_version.version}/").content.decode()
    day = timezone.localtime(item.grace_until).date().isoformat()
    assert 'id="in-grace"' in page
    assert f"<code>{item.key}</code></a> blocks from" in page and day in page
    assert "new item, in grace until" in page
    assert "badge ready" in page


def test_adding_an_item_on_the_page_says_when_it_starts_to_block(ready_version, operator):
    client = Client()
    client.force_login(operator)
    url = f"/agents/{ready_version.agent.slug}/versions/{ready_version.version}/checklist/"
    response = client.post(url, {"dimension": "security", "key": "security.pii", "title": "PII redacted"}, follow=True)
    text = response.content.decode()
    assert "applies to evaluations recorded from now on" in text
    grace_until = ChecklistItem.objects.get(key="security.pii").grace_until
    assert timezone.localtime(grace_until).strftime("%Y-%m-%d") in text


def test_the_api_shows_the_grace(ready_version, operator, api_client_for):
    ops = api_client_for(operator)
    created = ops.post("/api/v1/checklist", {"dimension": "security", "key": "security.pii", "title": "PII"}).json()
    assert created["grace_until"] is not None
    readiness = ops.get(f"/api/v1/agents/{ready_version.agent.slug}/versions/{ready_version.version}/readiness").json()
    assert readiness["ready"] is True
    grace_until = ChecklistItem.objects.get(key="security.pii").grace_until
    assert readiness["in_grace"] == [{"key": "security.pii", "grace_until": grace_until.isoformat()}]
    (item,) = [i for i in readiness["dimensions"]["security"]["items"] if i["key"] == "security.pii"]
    assert item["status"] == "grace" and item["ok"] is True
