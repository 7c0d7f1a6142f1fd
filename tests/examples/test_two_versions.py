"""examples/two_versions.py against the live server: one agent through two consecutive version
rollouts through the HTTP API alone (issue 9's proof), with the route distribution at every step.
A thread stands in for the Celery worker and beat: it folds events and runs the guardrail watch,
the same functions the scheduled tasks call."""
import json
import threading

import pytest
from django.db import connection

from agents.models import Agent, ProductionChange
from rolloutops.models import AuditEntry
from rolloutops.tokens import token_issue
from rollouts.models import Rollout
from rollouts.monitor import rollouts_watch_all
from telemetry.fold import events_fold
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def beat():
    stop = threading.Event()

    def loop():
        try:
            while not stop.wait(0.3):
                events_fold(max_seconds=5)
                rollouts_watch_all()
        finally:
            connection.close()

    thread = threading.Thread(target=loop, name="beat", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(30)


def test_two_consecutive_versions_through_the_api_alone(live_server, run_example, beat):
    operator = token_issue(user=UserFactory(username="olivia", roles=["operator"]), scopes="user", name="ops")[1]
    manager = token_issue(user=UserFactory(username="maya", roles=["manager"]), scopes="user", name="mgr")[1]
    out = run_example("two_versions.py", "--url", live_server.url, "--operator-token", operator,
                      "--manager-token", manager, "--agent", "claims-bot", "--spot-checks", "6", "--wait-s", "60",
                      "--json", timeout=600)
    steps = {row["step"]: row for row in json.loads(out.strip().splitlines()[-1])["steps"]}

    def acting(step):
        return steps[step]["acting"]

    assert list(steps) == [
        "1.0.0 staging", "1.0.0 shadow", "1.0.0 canary 5 %", "1.0.0 expand-10 10 %", "1.0.0 expand-25 25 %",
        "1.0.0 expand-50 50 %", "1.0.0 full 100 %", "1.0.0 completed",
        "2.0.0 staging", "2.0.0 shadow", "2.0.0 canary 5 %", "2.0.0 rolled back",
        "2.0.0 (retry) staging", "2.0.0 (retry) shadow", "2.0.0 (retry) canary 5 %", "2.0.0 (retry) expand-10 10 %",
        "2.0.0 (retry) expand-25 25 %", "2.0.0 (retry) expand-50 50 %", "2.0.0 (retry) full 100 %",
        "2.0.0 (retry) completed", "revert to 1.0.0",
    ]
    assert acting("1.0.0 staging") == acting("1.0.0 shadow") == {"humans": 10_000}
    assert steps["1.0.0 shadow"]["shadow"] == {"1.0.0": 10_000}
    assert set(acting("1.0.0 canary 5 %")) == {"humans", "1.0.0"}
    assert abs(acting("1.0.0 canary 5 %")["1.0.0"] - 500) < 100
    assert acting("1.0.0 completed") == acting("2.0.0 staging") == acting("2.0.0 shadow") == {"1.0.0": 10_000}
    assert steps["2.0.0 shadow"]["shadow"] == {"2.0.0": 10_000}
    canary = acting("2.0.0 canary 5 %")
    assert set(canary) == {"1.0.0", "2.0.0"} and abs(canary["2.0.0"] - 500) < 100  # none to people
    assert acting("2.0.0 rolled back") == {"1.0.0": 10_000}
    shares = [acting(f"2.0.0 (retry) {s}").get("2.0.0", 0) for s in
              ("canary 5 %", "expand-10 10 %", "expand-25 25 %", "expand-50 50 %", "full 100 %")]
    assert shares == sorted(shares) and shares[-1] == 10_000
    assert acting("2.0.0 (retry) completed") == {"2.0.0": 10_000}
    assert acting("revert to 1.0.0") == {"1.0.0": 10_000}
    for row in steps.values():  # the server's GET /route agrees with the client's bucket function
        agreed, checked = row["route_check"].split("/")
        assert agreed == checked and int(checked) > 0

    agent = Agent.objects.get(slug="claims-bot")
    assert agent.production_version.version == "1.0.0"
    assert list(Rollout.objects.filter(agent=agent).order_by("id").values_list("version__version", "state")) == [
        ("1.0.0", "completed"), ("2.0.0", "rolled_back"), ("2.0.0", "reverted")]
    assert ProductionChange.objects.filter(agent=agent).count() == 3
    assert AuditEntry.objects.filter(action__contains="revert").exists()
    assert "Where 10,000 request keys of claims-bot go at each step" in out
