"""The pair rollup's sums the fold keeps beside it (PairCell, AgreementHour) are PairHour summed,
whatever order and batches the halves of the pairs arrive in; the shadow figures read them."""
import importlib
import random
from datetime import timedelta

import pytest
from django.db import connection

from telemetry.fold import events_fold
from telemetry.models import AgreementHour, PairCell
from telemetry.selectors import _pair_groups, pair_groups_from_hours, rollout_discrepancy
from tests.telemetry.factories import T0

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"
LABELS = ["approve", "deny", "refer"]


def _mixed_events(slug: str, n: int, seed: int) -> list[list[dict]]:
    """n requests over both stages, several hours and segments (named by either half, or none), the
    candidate's and the human's halves split over deliveries in a random order; some never paired."""
    rng = random.Random(seed)
    halves = []
    for i in range(n):
        at = T0 + timedelta(hours=rng.choice([0.5, 2, 3, 7.5]), seconds=i)
        agent_label = rng.choice(LABELS)
        human_label = agent_label if rng.random() < 0.7 else rng.choice(LABELS)
        segment = rng.choice(["", "eu", "us", "apac"])
        halves.append({"agent": slug, "request_key": f"k{i}", "kind": "agent", "label": agent_label,
                       "segment": segment if rng.random() < 0.5 else "", "occurred_at": at.isoformat()})
        if rng.random() < 0.9:
            halves.append({"agent": slug, "request_key": f"k{i}", "kind": "human", "label": human_label,
                           "segment": segment, "occurred_at": (at + timedelta(hours=rng.choice([0, 1, 30]))).isoformat()})
    rng.shuffle(halves)
    cut = len(halves) // 3
    return [halves[:cut], halves[cut:2 * cut], halves[2 * cut:]]


@pytest.mark.parametrize("batch_size", [7, 50_000])
def test_the_sums_equal_the_pair_rollup_summed_after_every_fold(events_client, shadow_rollout, batch_size):
    for delivery in _mixed_events(shadow_rollout.agent.slug, 120, seed=batch_size):
        assert events_client.post(URL, {"events": delivery}).json()["errors"] == []
        events_fold(batch_size=batch_size)
        assert _pair_groups(shadow_rollout.pk) == pair_groups_from_hours(shadow_rollout.pk)
    groups = _pair_groups(shadow_rollout.pk)
    # Both stages, several hours and segments, agreeing and disagreeing pairs: the comparison had
    # something to compare.
    assert {row[1] for row in groups["cells"]} == {"staging", "shadow"}
    assert len({row[2] for row in groups["hours"]}) >= 4
    assert len({row[2] for row in groups["cells"]}) >= 3
    assert 0 < sum(row[4] for row in groups["hours"]) < sum(row[3] for row in groups["hours"])
    assert events_fold() == 0 and _pair_groups(shadow_rollout.pk) == pair_groups_from_hours(shadow_rollout.pk)


def test_the_report_from_the_sums_is_the_report_from_the_pair_rollup(events_client, shadow_rollout, monkeypatch):
    from telemetry import selectors

    for delivery in _mixed_events(shadow_rollout.agent.slug, 80, seed=3):
        events_client.post(URL, {"events": delivery})
    events_fold(batch_size=11)
    summed = {stage: rollout_discrepancy(rollout_id=shadow_rollout.pk, stage=stage) for stage in (None, "shadow")}
    # The same reports computed from two passes over PairHour (a later watermark, so nothing cached is read).
    from telemetry.models import RolloutFold
    RolloutFold.objects.filter(rollout_id=shadow_rollout.pk).update(computed_at=T0 + timedelta(days=400))
    monkeypatch.setattr(selectors, "_pair_groups", selectors.pair_groups_from_hours)
    from_hours = {stage: rollout_discrepancy(rollout_id=shadow_rollout.pk, stage=stage) for stage in (None, "shadow")}
    for stage in summed:
        assert summed[stage]["pairs"] > 0
        assert {k: v for k, v in summed[stage].items() if k != "computed_at"} == \
               {k: v for k, v in from_hours[stage].items() if k != "computed_at"}


def test_the_migration_fills_the_sums_from_the_pair_rollup(events_client, shadow_rollout):
    for delivery in _mixed_events(shadow_rollout.agent.slug, 60, seed=5):
        events_client.post(URL, {"events": delivery})
    events_fold()
    folded = _pair_groups(shadow_rollout.pk)
    PairCell.objects.all().delete()
    AgreementHour.objects.all().delete()
    migration = importlib.import_module("telemetry.migrations.0016_pair_summaries")
    with connection.cursor() as cursor:
        for statement in connection.ops.prepare_sql_script(migration.BACKFILL):
            cursor.execute(statement)
    assert folded["cells"] and _pair_groups(shadow_rollout.pk) == folded


def test_a_view_between_folds_reads_its_figures_from_its_process_and_the_next_fold_recomputes(events_client, shadow_rollout):
    from django.core.cache import cache
    from django.test.utils import CaptureQueriesContext

    slug = shadow_rollout.agent.slug
    for delivery in _mixed_events(slug, 40, seed=7):
        events_client.post(URL, {"events": delivery})
    events_fold()
    first = rollout_discrepancy(rollout_id=shadow_rollout.pk)
    cache.clear()  # the shared cache lost everything: this process still holds the figures of this watermark
    with CaptureQueriesContext(connection) as queries:
        again = rollout_discrepancy(rollout_id=shadow_rollout.pk)
    assert again == first and len(queries) == 1  # the watermark and the pending count
    # A fold that completes one more pair moves the watermark: the figures follow at once.
    events_client.post(URL, {"events": [
        {"agent": slug, "request_key": "late", "kind": kind, "label": "approve", "occurred_at": (T0 + timedelta(hours=2)).isoformat()}
        for kind in ("agent", "human")]})
    events_fold()
    assert rollout_discrepancy(rollout_id=shadow_rollout.pk)["pairs"] == first["pairs"] + 1


def test_the_report_of_every_stage_when_all_pairs_are_of_one_is_the_one_computed(events_client, shadow_rollout):
    from telemetry.selectors import _discrepancy, _fold_state

    events = [e for delivery in _mixed_events(shadow_rollout.agent.slug, 60, seed=11) for e in delivery
              if e["occurred_at"] >= (T0 + timedelta(hours=2)).isoformat()]  # the shadow stage's only
    events_client.post(URL, {"events": events})
    events_fold()
    watermark, _ = _fold_state(shadow_rollout.pk)
    shown = rollout_discrepancy(rollout_id=shadow_rollout.pk)  # derived from the shadow stage's report
    computed = _discrepancy(rollout_id=shadow_rollout.pk, stage=None, against="human", computed_at=watermark)
    assert shown["pairs"] > 0 and shown["recent_discrepant"] and shown["stage"] is None
    assert {k: v for k, v in shown.items() if k not in ("references", "pending_events")} == computed
