"""POST /api/v1/events with hostile values: each bad event is a per-index error, the batch's valid
events are stored, and nothing stored can make a later read of the rollout's figures fail."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from rollouts.gates import current_stage, stage_figures
from telemetry.fold import events_fold
from telemetry.models import Event
from telemetry.selectors import rollout_discrepancy
from tests.telemetry.factories import T0

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"


def _event(slug, key, **extra):
    return {"agent": slug, "request_key": key, "kind": "agent", "label": "approve",
            "occurred_at": (T0 + timedelta(hours=2)).isoformat(), **extra}


def _hostile() -> dict[str, str]:
    """Each bad value as raw JSON text (lone surrogates and NaN cannot be written with json.dumps);
    built at call time: the window of accepted times moves with the clock."""
    return {
        "nul in request_key": '"request_key": "k\\u0000x"',
        "surrogate in request_key": '"request_key": "k\\ud800"',
        "nul in label": '"label": "a\\u0000"',
        "surrogate in label": '"label": "\\udfff"',
        "nul in segment": '"segment": "eu\\u0000"',
        "surrogate in segment": '"segment": "\\ud83d"',
        "nul in input_hash": '"input_hash": "\\u0000"',
        "surrogate in input_hash": '"input_hash": "\\udc00"',
        "nul in trace": '"trace": {"step": "a\\u0000b"}',
        "surrogate in trace key": '"trace": {"\\ud800": 1}',
        "NaN in trace": '"trace": {"score": NaN}',
        "Infinity in trace": '"trace": [1, Infinity]',
        "-Infinity in trace": '"trace": {"a": [{"b": -Infinity}]}',
        "object outcome": '"outcome": {}',
        "array outcome": '"outcome": []',
        "object kind": '"kind": {}',
        "array label": '"label": ["x"]',
        "NaN latency": '"latency_ms": NaN',
        "huge latency": '"latency_ms": 1e300',
        "huge integer confidence": '"confidence": ' + "9" * 400,
        "empty moment": '"occurred_at": ""',
        "year 9999": '"occurred_at": "9999-12-31T23:59:59-14:00"',
        "year 1": '"occurred_at": "0001-01-01T00:00:00+14:00"',
        "older than retention": f'"occurred_at": "{(datetime.now(timezone.utc) - timedelta(days=31)).isoformat()}"',
        "in the future": f'"occurred_at": "{(datetime.now(timezone.utc) + timedelta(minutes=10)).isoformat()}"',
        "deep trace": '"trace": ' + "[" * 40 + "]" * 40,
    }


def _batch(slug: str) -> str:
    """A valid event, then one event per hostile value (each overriding one field), then a valid one."""
    items = [json.dumps(_event(slug, "good-first"))]
    for i, fragment in enumerate(_hostile().values()):
        base = json.dumps(_event(slug, f"bad-{i}"))[:-1]  # drop the closing brace
        items.append(base + ", " + fragment + "}")
    items.append(json.dumps(_event(slug, "good-last")))
    return '{"events": [' + ", ".join(items) + "]}"


def test_each_hostile_value_is_a_per_index_error_and_valid_events_are_kept(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    response = events_client.post(URL, _batch(slug))
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["accepted"] == 2
    rejected = {e["index"] for e in data["errors"]}
    assert rejected == set(range(1, len(_hostile()) + 1)), [(e["index"], e["detail"]) for e in data["errors"]]
    assert set(Event.objects.values_list("request_key", flat=True)) == {"good-first", "good-last"}


def test_hostile_batch_retried_stores_nothing_twice(events_client, shadow_rollout):
    body = _batch(shadow_rollout.agent.slug)
    events_client.post(URL, body)
    again = events_client.post(URL, body).json()
    assert (again["accepted"], again["duplicates"]) == (0, 2)


def test_rollout_figures_still_read_after_a_hostile_batch_is_folded(events_client, shadow_rollout):
    events_client.post(URL, _batch(shadow_rollout.agent.slug))
    events_fold()
    figures = stage_figures(rollout=shadow_rollout, stage=current_stage(shadow_rollout))
    assert figures["figures"]["samples"] == 2
    assert rollout_discrepancy(rollout_id=shadow_rollout.pk)["rollout"] == shadow_rollout.pk


def test_error_details_say_what_is_wrong(events_client, shadow_rollout):
    slug = shadow_rollout.agent.slug
    body = '{"events": [' + ", ".join([
        json.dumps(_event(slug, "a"))[:-1] + ', "occurred_at": "9999-12-31T23:59:59-14:00"}',
        json.dumps(_event(slug, "b"))[:-1] + ', "trace": {"x": NaN}}',
        json.dumps(_event(slug, "c"))[:-1] + ', "label": "a\\u0000"}',
    ]) + "]}"
    details = [e["detail"] for e in events_client.post(URL, body).json()["errors"]]
    assert "future" in details[0] or "out of range" in details[0]
    assert "NaN" in details[1]
    assert "NUL" in details[2]
