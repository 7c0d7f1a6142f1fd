"""examples/otel_agent.py, an agent instrumented with the OpenTelemetry SDK and nothing of rolloutops:
its spans become the candidate's decisions, and with people's decisions on the same requests, pairs on
the rollout's shadow figures."""
import pytest

from rolloutops.tokens import token_issue
from telemetry.fold import events_fold
from telemetry.models import Event
from telemetry.selectors import rollout_discrepancy
from tests.factories import UserFactory
from tests.telemetry.factories import rollout_with_history

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_instrumented_agents_spans_become_pairs_on_the_shadow_page(live_server, run_example, api_client_for):
    rollout = rollout_with_history()  # people act, the candidate runs in shadow beside them
    slug, version = rollout.agent.slug, rollout.version.version
    owner = UserFactory(roles=["operator"])
    token = token_issue(user=owner, scopes="events:write", name="kyc-otel")[1]

    out = run_example("otel_agent.py", "--url", live_server.url, "--token", token, "--agent", slug,
                      "--version", version, "--requests", "40", "--key-prefix", "kyc", "--pause-ms", "0", "--gzip")
    assert "40 decisions" in out

    candidate = {e.request_key: e for e in Event.objects.filter(agent=rollout.agent, kind="agent")}
    assert sorted(candidate) == sorted(f"kyc-{i}" for i in range(40))
    assert {(e.version_id, e.rollout_id, e.stage) for e in candidate.values()} == {(rollout.version_id, rollout.pk, "shadow")}
    first = candidate["kyc-0"]
    steps = first.trace["steps"]
    assert (steps[0]["tool"], steps[0]["arguments"]) == ("read_document", {"request": "kyc-0"})
    assert (steps[-1]["tool"], steps[-1]["operation"]) == ("chat doc-checker-7b", "chat")
    assert first.segment and first.input_hash and 0.6 <= first.confidence <= 1

    # People decide the same requests (as a review desk would report them): 4 of 40 differently.
    other = {"approve": "reject", "reject": "request_info", "request_info": "approve"}
    humans = [{"agent": slug, "request_key": key, "kind": "human",
               "label": other[e.label] if int(key.split("-")[1]) % 10 == 3 else e.label,
               "segment": e.segment, "occurred_at": e.occurred_at.isoformat()} for key, e in candidate.items()]
    answer = api_client_for(owner, "events:write").post("/api/v1/events", {"events": humans}).json()
    assert answer["accepted"] == 40, answer

    events_fold()
    report = rollout_discrepancy(rollout_id=rollout.pk)
    assert (report["pairs"], report["agreements"], report["against"]) == (40, 36, "human")


def test_with_people_at_an_instrumented_review_desk_the_pairs_come_from_spans_alone(live_server, run_example):
    rollout = rollout_with_history()
    token = token_issue(user=UserFactory(roles=["operator"]), scopes="events:write", name="kyc-otel")[1]
    out = run_example("otel_agent.py", "--url", live_server.url, "--token", token, "--agent", rollout.agent.slug,
                      "--version", rollout.version.version, "--requests", "30", "--pause-ms", "0", "--people",
                      # The example's randomness is seeded by the key prefix: a fixed one makes the run
                      # the same every time (a random one agreed on all 30 about one run in 25).
                      "--key-prefix", "otel-desk")
    agreed = int(out.split("people decided the same 30 requests: ")[1].split()[0])
    assert 20 < agreed < 30

    people = Event.objects.filter(agent=rollout.agent, kind="human")
    assert people.count() == 30 and {e.version_id for e in people} == {None}
    events_fold()
    report = rollout_discrepancy(rollout_id=rollout.pk)
    assert (report["pairs"], report["agreements"]) == (30, agreed)
