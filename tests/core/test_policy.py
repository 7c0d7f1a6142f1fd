"""The authorization policy: one table read by pages, the API, services, templates and the nav."""
import re
from pathlib import Path

import pytest

from rollouts.models import StageMode
from rollouts.services import rollout_pause, rollout_resume
from rolloutops import policy
from rolloutops.exceptions import Forbidden
from tests.factories import UserFactory
from tests.telemetry.factories import rollout_with_history

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
# Every call that names an action: authorize(request, "…"), require_action("…"), page_allows(…, "…"),
# policy.check(actor, "…"), policy.allows(user, "…"), refusal(user, "…"), {% can "…" %}.
NAMED = re.compile(r'''(?:authorize\(request, |require_action\(|page_allows\(request, |check\(\w+, |allows\([\w.]+, |refusal\(\w+, |{% can )"([a-z_]+\.[a-z_]+)"''')


def _named_actions() -> set[str]:
    found = set()
    for folder in ("agents", "console", "escalations", "rolloutops", "rollouts", "telemetry", "templates"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".html") and "migrations" not in path.parts:
                found |= set(NAMED.findall(path.read_text()))
    return found


def test_every_action_the_code_names_is_in_the_table():
    from console.context_processors import NAVIGATION
    from rollouts.views import _ACTIONS, _DECISIONS

    named = _named_actions()
    assert {"rollout.rollback", "promotion.decide", "metrics.read", "escalation.work"} <= named  # the scan works
    named |= {action for _, _, action in NAVIGATION} | {a for a, _, _ in _ACTIONS.values()} | set(_DECISIONS.values())
    assert named - set(policy.POLICY) == set()


def test_an_unknown_action_is_an_error_not_a_refusal(operator):
    with pytest.raises(LookupError, match="rollout.rolback"):
        policy.allows(operator, "rollout.rolback")


def test_who_may_do_what_reads_off_the_table():
    assert policy.roles_for("rollout.rollback") == ["operator"]
    assert policy.roles_for("promotion.decide") == ["manager"]
    assert policy.roles_for("escalation.release_any") == ["manager"]
    assert policy.roles_for("audit.read") == ["manager", "operator"]
    assert policy.rule("route.read").scopes == {"route:read", "user"}
    assert policy.rule("metrics.read").scopes == {"metrics:read", "user"}


def test_pause_and_resume_refuse_people_without_the_operator_role(reviewer, manager, operator):
    rollout = rollout_with_history(stages=(("staging", StageMode.OFF, 0), ("canary", StageMode.LIVE, 5)))
    for person in (reviewer, manager):
        with pytest.raises(Forbidden, match="operator role"):
            rollout_pause(actor=person, rollout=rollout, reason="not mine to pause")
    paused = rollout_pause(actor=operator, rollout=rollout, reason="checking a dashboard")
    with pytest.raises(Forbidden, match="operator role"):
        rollout_resume(actor=reviewer, rollout=paused, reason="not mine either")


def test_the_system_acts_without_a_person():
    rollout = rollout_with_history(stages=(("staging", StageMode.OFF, 0), ("canary", StageMode.LIVE, 5)))
    assert rollout_pause(actor=None, rollout=rollout, reason="inconclusive: silence", automatic=True).state == "paused"


def _nav(client, person) -> list[str]:
    client.force_login(person)
    html = client.get("/").content.decode()
    nav = html[html.index('<nav class="mainnav"'):html.index("</nav>")]
    return re.findall(r">([A-Z][a-z]+)</a>", nav)


def test_the_nav_shows_each_person_only_what_they_may_open(client, operator, reviewer, manager):
    assert _nav(client, operator) == ["Overview", "Agents", "Rollouts", "Approvals", "Audit"]
    assert _nav(client, reviewer) == ["Overview", "Agents", "Rollouts", "Escalations"]
    assert _nav(client, manager) == ["Overview", "Agents", "Rollouts", "Escalations", "Approvals", "Audit"]


def test_every_nav_entry_opens_for_whoever_sees_it(client, operator, reviewer, manager):
    for person in (operator, reviewer, manager):
        client.force_login(person)
        html = client.get("/").content.decode()
        nav = html[html.index('<nav class="mainnav"'):html.index("</nav>")]
        for href in re.findall(r'href="([^"]+)"', nav):
            assert client.get(href).status_code == 200, (person.username, href)


def test_the_overview_links_escalation_counts_only_for_those_who_may_open_the_queue(client, operator, reviewer):
    client.force_login(operator)
    assert 'href="/escalations/' not in client.get("/").content.decode()
    client.force_login(reviewer)
    assert 'href="/escalations/' in client.get("/").content.decode()


def test_a_person_without_a_role_sees_no_page(client):
    client.force_login(UserFactory(username="nobody"))
    assert client.get("/").status_code == 403
    assert client.get("/agents/").status_code == 403
