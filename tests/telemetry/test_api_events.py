"""POST /api/v1/events: validation by index, partial acceptance, idempotence, limits, scopes."""
import math
from datetime import timedelta, timezone

import pytest

from agents.models import Agent
from rolloutops.bucketing import bucket, goes_to_candidate
from rollouts.models import StageMode
from telemetry.models import Arm, Event, UnfoldedEvent
from telemetry.periods import traffic_period_record
from tests.factories import AgentVersionFactory
from tests.telemetry.factories import T0, rollout_with_history

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"


def _event(slug, key, kind="agent", label="approve", hours=2.0, **extra):
    return {"agent": slug, "request_key": key, "kind": kind, "label": label,
            "occurred_at": (T0 + timedelta(hours=hours)).isoformat(), **extra}


def test_valid_events_are_stored_and_invalid_ones_reported_by_index(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    body = {"events": [
        _event(slug, "k1", trace={"steps": [1]}, latency_ms=12.5, confidence=0.8, segment="eu", input_hash="abc"),
        _event(slug, "k2", kind="robot"),
        _event(slug, "k3", label=""),
        _event("no-such-agent", "k4"),
        _event(slug, "k5", outcome="exploded"),
        {**_event(slug, "k6"), "occurred_at": "2026-03-02T10:00:00"},
        _event(slug, "k7", kind="human"),
        "not an object",
        _event(slug, "k8", confidence=3),
        _event(slug, "k9", version="9.9.9"),
    ]}
    response = events_client.post(URL, body)
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["accepted"], data["duplicates"]) == (2, 0)
    errors = {e["index"]: e["detail"] for e in data["errors"]}
    assert set(errors) == {1, 2, 3, 4, 5, 7, 8, 9}
    assert "kind" in errors[1]
    assert "label is required" in errors[2]
    assert "unknown agent" in errors[3]
    assert "outcome" in errors[4]
    assert "offset" in errors[5]
    assert "object" in errors[7]
    assert "confidence" in errors[8]
    assert "unknown version" in errors[9]
    stored = Event.objects.get(request_key="k1")
    assert (stored.rollout_id, stored.stage, stored.version_id) == (shadow_rollout.pk, "shadow", shadow_rollout.version_id)
    assert stored.has_trace and stored.trace == {"steps": [1]} and stored.segment == "eu" and stored.latency_ms == 12.5
    assert not Event.objects.get(request_key="k7").has_trace


def test_each_event_of_a_batch_is_attributed_by_its_own_moment_key_and_latency(events_client):
    # One batch across staging, shadow, a live 50 % canary (latency limit 3 s) and its pause:
    # ingestion remembers attributions within a batch, and none may leak from one event to another.
    v1 = AgentVersionFactory(version="1.0.0")
    Agent.objects.filter(pk=v1.agent_id).update(production_version=v1)
    v2 = AgentVersionFactory(agent=Agent.objects.get(pk=v1.agent_id), version="2.0.0")
    rollout = rollout_with_history(version=v2, stages=(
        ("staging", StageMode.OFF, 0), ("shadow", StageMode.SHADOW, 0), ("canary", StageMode.LIVE, 50)))
    traffic_period_record(agent_id=v1.agent_id, at=T0 + timedelta(hours=3), rollout_id=rollout.pk, stage="canary",
                          mode=StageMode.LIVE, active=False, salt=rollout.salt, candidate_version_id=v2.pk,
                          incumbent_version_id=v1.pk, latency_limit_ms=3000)  # paused: people act, v2 still timed
    slug = v1.agent.slug
    routed = [f"r{i}" for i in range(40)]  # no version given: routing says who acted
    batch = [_event(slug, key, hours=2.5) for key in routed]
    timed = {"staging": (0.5, None), "shadow": (1.5, 4000), "c-fast": (2.5, 2000), "c-slow": (2.5, 4000),
             "c-untimed": (2.5, None), "p-fast": (3.5, 2000), "p-slow": (3.5, 4000)}
    batch += [_event(slug, key, version="2.0.0", hours=hours, latency_ms=latency)
              for key, (hours, latency) in timed.items()]
    assert events_client.post(URL, {"events": batch}).json()["accepted"] == 47

    stored = {e.request_key: e for e in Event.objects.all()}
    to_candidate = {key for key in routed if goes_to_candidate(bucket(rollout.salt, key), 50)}
    assert 0 < len(to_candidate) < len(routed)  # both arms in the one batch
    for key in routed:
        expected = (v2.pk, Arm.CANDIDATE) if key in to_candidate else (v1.pk, Arm.CONTROL)
        assert (stored[key].version_id, stored[key].arm, stored[key].stage, stored[key].slow) == (*expected, "canary", None)
    assert {key: (stored[key].stage, stored[key].arm, stored[key].slow) for key in timed} == {
        "staging": ("staging", Arm.CANDIDATE, None), "shadow": ("shadow", Arm.CANDIDATE, None),
        "c-fast": ("canary", Arm.CANDIDATE, False), "c-slow": ("canary", Arm.CANDIDATE, True),
        "c-untimed": ("canary", Arm.CANDIDATE, None),
        "p-fast": ("canary", Arm.CANDIDATE, False), "p-slow": ("canary", Arm.CANDIDATE, True)}


def test_retried_batch_stores_nothing_twice(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    body = {"events": [_event(slug, "k1"), _event(slug, "k1", kind="human"), _event(slug, "k1")]}
    first = events_client.post(URL, body).json()
    assert (first["accepted"], first["duplicates"]) == (2, 1)
    second = events_client.post(URL, body).json()
    assert (second["accepted"], second["duplicates"], second["errors"]) == (0, 3, [])
    assert Event.objects.count() == 2


def test_a_full_batch_is_stored_and_queued_once_with_a_repeat_far_from_its_first(events_client, shadow_rollout):
    # On PostgreSQL the whole batch is one statement (telemetry/services.py); on SQLite statements
    # of 1,000 rows in one transaction. The repeat of k10 comes 4,989 events after it.
    slug = shadow_rollout.agent.slug
    body = {"events": [_event(slug, f"k{i}") for i in range(4999)] + [_event(slug, "k10", label="deny")]}
    first = events_client.post(URL, body).json()
    assert (first["accepted"], first["duplicates"], first["errors"]) == (4999, 1, [])
    assert Event.objects.count() == UnfoldedEvent.objects.count() == 4999
    assert Event.objects.get(request_key="k10").label == "approve"  # the first of a repeated key is kept
    second = events_client.post(URL, body).json()
    assert (second["accepted"], second["duplicates"], second["errors"]) == (0, 5000, [])
    assert Event.objects.count() == UnfoldedEvent.objects.count() == 4999


def test_event_attaches_to_the_stage_current_at_occurred_at(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    events_client.post(URL, {"events": [_event(slug, "early", hours=0.5), _event(slug, "before", hours=-1, version=shadow_rollout.version.version)]})
    early = Event.objects.get(request_key="early")
    assert (early.rollout_id, early.stage) == (shadow_rollout.pk, "staging")
    before = Event.objects.get(request_key="before")
    assert (before.rollout_id, before.stage) == (None, "")


def test_agent_event_without_version_or_rollout_is_refused_but_human_is_kept(events_client):
    version = AgentVersionFactory()
    data = events_client.post(URL, {"events": [_event(version.agent.slug, "k"), _event(version.agent.slug, "k", kind="human")]}).json()
    assert data["accepted"] == 1
    assert "version is required" in data["errors"][0]["detail"] and data["errors"][0]["index"] == 0


def test_more_than_5000_events_is_refused_with_413(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    response = events_client.post(URL, {"events": [_event(slug, f"k{i}") for i in range(5001)]})
    assert response.status_code == 413
    assert "at most 5,000" in response.json()["detail"]
    assert Event.objects.count() == 0


def test_body_over_upload_limit_is_413(events_client, shadow_rollout, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = events_client.post(URL, {"events": [_event(shadow_rollout.agent.slug, f"k{i}") for i in range(50)]})
    assert response.status_code == 413
    assert response.json()["detail"]


def test_token_without_events_scope_is_403(api_client_for, operator, shadow_rollout):
    client = api_client_for(operator, "route:read")
    response = client.post(URL, {"events": [_event(shadow_rollout.agent.slug, "k")]})
    assert response.status_code == 403
    assert Event.objects.count() == 0


def test_reviewer_token_cannot_report_events(api_client_for, reviewer, shadow_rollout):
    response = api_client_for(reviewer, "events:write").post(URL, {"events": [_event(shadow_rollout.agent.slug, "k")]})
    assert response.status_code == 403


def test_missing_events_list_is_422(events_client):
    assert events_client.post(URL, {"nope": []}).status_code == 422


def test_ingestion_schedules_one_fold_after_commit(events_client, shadow_rollout, django_capture_on_commit_callbacks):
    slug = shadow_rollout.agent.slug
    with django_capture_on_commit_callbacks() as callbacks:
        events_client.post(URL, {"events": [_event(slug, f"k{i}") for i in range(10)]})
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        events_client.post(URL, {"events": [_event(slug, f"k{i}") for i in range(10)]})  # all duplicates
    assert callbacks == []


def test_ingestion_uses_a_fixed_number_of_queries(events_client, shadow_rollout, django_assert_max_num_queries):
    slug = shadow_rollout.agent.slug
    with django_assert_max_num_queries(16):  # a few per 1,000-event statement, never per event
        response = events_client.post(URL, {"events": [_event(slug, f"k{i}") for i in range(2500)]})
    assert response.json()["accepted"] == 2500


def test_text_with_separators_and_escapes_is_stored_exactly(events_client, shadow_rollout):
    # Control characters a column's joined text could be split on (telemetry/services.py), and
    # non-ASCII text sent as \u escapes (surrogate pairs included), go through and come back as sent.
    slug = shadow_rollout.agent.slug
    odd = [_event(slug, "k\x1f1", label="a\x1fb", segment="caf\u00e9 \u2615", trace={"note": "\U0001f600\x1e"}),
           _event(slug, "k\x1f1", kind="human", label="\x1f"),
           _event(slug, "k2", input_hash="\x1f\x1f")]
    response = events_client.post(URL, {"events": odd})
    assert response.json() == {"accepted": 3, "duplicates": 0, "errors": []}
    agent = Event.objects.get(request_key="k\x1f1", kind="agent")
    assert (agent.label, agent.segment, agent.trace) == ("a\x1fb", "caf\u00e9 \u2615", {"note": "\U0001f600\x1e"})
    assert Event.objects.get(request_key="k\x1f1", kind="human").label == "\x1f"
    assert Event.objects.get(request_key="k2").input_hash == "\x1f\x1f"
    again = events_client.post(URL, {"events": odd}).json()
    assert (again["accepted"], again["duplicates"]) == (0, 3)


def test_a_body_that_is_not_an_events_object_is_422(events_client):
    for body in ("not json", "[]", '{"events": 3}'):
        response = events_client.post(URL, body)
        assert response.status_code == 422, body
        assert response.json()["detail"]


def test_numbers_flags_and_moments_of_a_batch_are_stored_exactly(events_client, shadow_rollout):
    # A batch's number, flag and moment columns travel as one parameter each (telemetry/services.py,
    # `_joined`): every value comes back as sent, to the microsecond and the last bit of a float.
    slug = shadow_rollout.agent.slug
    moment = T0 + timedelta(hours=2, microseconds=123457)
    sent = [
        _event(slug, "a", confidence=1e-07, latency_ms=0.1 + 0.2, occurred_at=moment.isoformat(), trace=[]),
        _event(slug, "b", confidence=1, latency_ms=86_400_000, segment="", input_hash="",
               occurred_at=moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()),
        _event(slug, "c", kind="human", occurred_at=(moment + timedelta(microseconds=1)).isoformat().replace("+00:00", "Z")),
    ]
    assert events_client.post(URL, {"events": sent}).json() == {"accepted": 3, "duplicates": 0, "errors": []}
    a, b, c = (Event.objects.get(request_key=key) for key in "abc")
    assert (a.confidence, a.latency_ms, a.occurred_at, a.has_trace, a.trace) == (1e-07, 0.1 + 0.2, moment, False, [])
    assert (b.confidence, b.latency_ms, b.occurred_at, b.segment, b.input_hash) == (1.0, 86_400_000.0, moment, "", "")
    assert (c.confidence, c.latency_ms, c.version_id, c.slow, c.trace) == (None, None, None, None, None)
    assert c.occurred_at == moment + timedelta(microseconds=1)
    assert a.received_at == b.received_at == c.received_at


def test_a_column_the_same_in_every_event_is_stored_as_sent(events_client, shadow_rollout, is_postgres):
    # A column whose value every event of a batch shares is bound once on PostgreSQL instead of
    # travelling as a column (telemetry/services.py, `_pg_insert_statement`): whatever the mix of
    # shared and varying columns, NULL and "" included, each event comes back as sent.
    slug = shadow_rollout.agent.slug
    moment = (T0 + timedelta(hours=3, microseconds=5)).isoformat()
    shared = {"occurred_at": moment, "confidence": 0.25, "latency_ms": 7.5, "segment": "", "input_hash": "h",
              "trace": {"steps": [{"tool": "x"}]}, "outcome": "timeout"}
    sent = [_event(slug, f"s{i}", label=label, **shared) for i, label in enumerate(["approve", "deny", "approve"])]
    assert events_client.post(URL, {"events": sent}).json() == {"accepted": 3, "duplicates": 0, "errors": []}
    humans = [_event(slug, f"s{i}", kind="human", label="deny", occurred_at=moment) for i in range(3)]
    assert events_client.post(URL, {"events": humans}).json()["accepted"] == 3
    for i, label in enumerate(["approve", "deny", "approve"]):
        agent = Event.objects.get(request_key=f"s{i}", kind="agent")
        human = Event.objects.get(request_key=f"s{i}", kind="human")
        assert (agent.label, agent.confidence, agent.latency_ms, agent.segment, agent.input_hash, agent.outcome) == (
            label, 0.25, 7.5, "", "h", "timeout")
        assert agent.trace == {"steps": [{"tool": "x"}]} and agent.has_trace
        assert agent.occurred_at == human.occurred_at == T0 + timedelta(hours=3, microseconds=5)
        assert (human.label, human.confidence, human.latency_ms, human.trace, human.has_trace, human.version_id) == (
            "deny", None, None, None, False, None)
        assert (agent.rollout_id, agent.stage, agent.arm) == (shadow_rollout.pk, "shadow", "candidate")
        assert UnfoldedEvent.objects.filter(event_id__in=[agent.pk, human.pk]).count() == 2
    # Zeros of both signs are two values, each stored as sent.
    zeros = [_event(slug, f"z{i}", latency_ms=latency, occurred_at=moment)
             for i, latency in enumerate([0.0, -0.0, 0.0])]
    assert events_client.post(URL, {"events": zeros}).json()["accepted"] == 3
    signs = [math.copysign(1.0, Event.objects.get(request_key=f"z{i}").latency_ms) for i in range(3)]
    # SQLite keeps a whole REAL as an integer on disk: -0.0 comes back 0.0 there whatever is sent.
    assert signs == ([1.0, -1.0, 1.0] if is_postgres else [1.0, 1.0, 1.0])
    # One event sent three times: every column the same, the key too. It is stored once.
    same = _event(slug, "once", **shared)
    assert events_client.post(URL, {"events": [same, same, same]}).json() == {
        "accepted": 1, "duplicates": 2, "errors": []}
    assert Event.objects.filter(request_key="once").count() == 1
