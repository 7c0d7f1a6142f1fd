"""The readiness gate: manual items, expiry, automatic checks from telemetry."""
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import ChecklistItem
from agents.readiness import automatic_checks, percentile_nearest_rank, version_readiness
from agents.services import evaluation_record
from tests.agents.conftest import all_pass_results, healthy_telemetry, make_events, make_tickets

pytestmark = pytest.mark.django_db


def test_default_checklist_has_the_fourteen_spec_items_in_five_dimensions():
    keys = set(ChecklistItem.objects.values_list("key", flat=True))
    assert {"reliability.malformed_inputs", "observability.dashboards", "fallback.context_preserved",
            "security.encryption", "performance.resource_use"} <= keys
    assert set(ChecklistItem.objects.values_list("dimension", flat=True)) == {
        "reliability", "observability", "fallback", "security", "performance"}


def test_version_with_every_item_passing_and_healthy_telemetry_is_ready(ready_version):
    readiness = version_readiness(version=ready_version)
    assert readiness.ready
    assert readiness.failing == []
    assert {d.status for d in readiness.dimensions.values()} == {"pass"}


def test_never_evaluated_version_is_not_ready_and_lists_every_item(version):
    readiness = version_readiness(version=version)
    assert not readiness.ready
    assert "security.encryption: not evaluated" in readiness.failing
    assert readiness.dimensions["security"].status == "fail"


def test_one_failing_security_item_makes_version_not_ready_and_names_it(version, operator):
    healthy_telemetry(version)
    results = [r if r["item"] != "security.encryption" else {**r, "status": "fail"} for r in all_pass_results()]
    evaluation = evaluation_record(actor=operator, version=version, results=results)

    readiness = version_readiness(version=version)

    assert not readiness.ready
    assert readiness.failing == [f"security.encryption: failed on evaluation #{evaluation.pk} by olivia"]
    assert readiness.dimensions["security"].status == "fail"
    assert readiness.dimensions["security"].failing == readiness.failing
    assert readiness.dimensions["reliability"].status == "pass"


def test_not_applicable_counts_as_passing(version, operator):
    healthy_telemetry(version)
    results = [r if r["item"] != "performance.throughput" else {**r, "status": "na"} for r in all_pass_results()]
    evaluation_record(actor=operator, version=version, results=results)
    assert version_readiness(version=version).ready


def test_expired_evaluation_makes_version_not_ready(ready_version):
    later = timezone.now() + timedelta(days=91)
    readiness = version_readiness(version=ready_version, now=later)
    assert not readiness.ready
    assert any(line.startswith("security.encryption: expired on ") for line in readiness.failing)


def test_evaluation_expiring_within_two_weeks_is_marked_but_still_passes(ready_version):
    readiness = version_readiness(version=ready_version, now=timezone.now() + timedelta(days=80))
    assert readiness.ready
    assert all(i.expiring_soon for i in readiness.dimensions["security"].items)


def test_latest_result_wins_over_an_older_pass(ready_version, operator):
    evaluation_record(actor=operator, version=ready_version,
                      results=[{"item": "security.least_privilege", "status": "fail", "evidence": "shared admin key"}])
    readiness = version_readiness(version=ready_version)
    assert [line.split(":")[0] for line in readiness.failing] == ["security.least_privilege"]


def test_performance_check_fails_when_p95_exceeds_the_sla(version):
    make_events(version, 90, latency_ms=100.0)
    make_events(version, 10, start=90, latency_ms=5000.0)  # the slowest 10 % → p95 = 5000 ms
    check = next(c for c in version_readiness(version=version).dimensions["performance"].automatic
                 if c.key == "performance.p95_latency")
    assert check.verdict == "fail"
    assert check.measured == 5000.0
    assert check.threshold == 2000.0
    assert check.samples == 100
    assert "performance.p95_latency: 5000 ms, needs ≤ 2000 ms (100 samples)" in version_readiness(version=version).failing


def test_performance_check_passes_within_the_sla(version):
    make_events(version, 96, latency_ms=100.0)
    make_events(version, 4, start=96, latency_ms=5000.0)  # only the top 4 % are slow
    check = next(c for c in version_readiness(version=version).dimensions["performance"].automatic
                 if c.key == "performance.p95_latency")
    assert check.verdict == "pass"
    assert check.measured == 100.0


def test_performance_check_is_unknown_under_the_sample_minimum(version):
    make_events(version, 12, latency_ms=10.0)
    readiness = version_readiness(version=version)
    check = next(c for c in readiness.dimensions["performance"].automatic if c.key == "performance.p95_latency")
    assert check.verdict == "unknown"
    assert check.measured is None
    assert "performance.p95_latency: unknown — 12 samples, needs 100" in readiness.failing


def test_unknown_automatic_check_keeps_an_otherwise_passing_dimension_unknown_and_not_ready(version, operator):
    evaluation_record(actor=operator, version=version, results=all_pass_results())
    readiness = version_readiness(version=version)
    assert readiness.dimensions["security"].status == "pass"  # no automatic check there
    assert readiness.dimensions["performance"].status == "unknown"
    assert not readiness.ready


def test_error_rate_counts_errors_and_timeouts_against_the_sla(version):
    make_events(version, 95)
    make_events(version, 3, start=95, outcome="error")
    make_events(version, 2, start=98, outcome="timeout")
    check = next(c for c in version_readiness(version=version).dimensions["performance"].automatic
                 if c.key == "performance.error_rate")
    assert check.measured == pytest.approx(0.05)
    assert check.verdict == "fail"


def test_reliability_measures_share_of_repeated_inputs_with_identical_labels(version):
    for g in range(19):
        make_events(version, 2, start=2 * g, input_hash=f"same{g}")
    make_events(version, 1, start=100, input_hash="split", label="approve")
    make_events(version, 1, start=101, input_hash="split", label="deny")
    make_events(version, 1, start=102, input_hash="seen-once")
    check = version_readiness(version=version).dimensions["reliability"].automatic[0]
    assert check.samples == 20
    assert check.measured == pytest.approx(19 / 20)
    assert check.verdict == "pass"


def test_observability_and_fallback_fail_below_their_shares(version):
    make_events(version, 98)
    make_events(version, 2, start=98, has_trace=False)
    make_tickets(version, 9)
    make_tickets(version, 1, start=9, has_context=False)
    readiness = version_readiness(version=version)
    assert readiness.dimensions["observability"].automatic[0].verdict == "fail"
    assert readiness.dimensions["observability"].automatic[0].measured == pytest.approx(0.98)
    assert readiness.dimensions["fallback"].automatic[0].verdict == "fail"
    assert readiness.dimensions["fallback"].automatic[0].samples == 10


def test_as_dict_is_json_serializable_with_the_contract_shape(ready_version):
    import json

    data = json.loads(json.dumps(version_readiness(version=ready_version).as_dict()))
    assert data["ready"] is True
    assert set(data["dimensions"]) == {"reliability", "observability", "fallback", "security", "performance"}
    assert set(data["dimensions"]["performance"]) >= {"status", "failing", "items", "automatic"}
    assert data["failing"] == []
    assert data["computed_at"]


def test_readiness_takes_a_fixed_handful_of_queries(ready_version, operator, django_assert_max_num_queries):
    for n in range(10):
        ChecklistItem.objects.create(key=f"security.extra_{n}", dimension="security", title=f"extra {n}")
    evaluation_record(actor=operator, version=ready_version, results=all_pass_results())
    with django_assert_max_num_queries(6):
        assert version_readiness(version=ready_version).ready


def test_nearest_rank_percentile_matches_hand_computed_values():
    assert percentile_nearest_rank(list(range(1, 101)), 0.95) == 95
    assert percentile_nearest_rank([5.0], 0.95) == 5.0
    assert percentile_nearest_rank([], 0.95) is None


def test_retired_item_no_longer_blocks_readiness(ready_version, operator):
    item = ChecklistItem.objects.create(key="security.retired_rule", dimension="security", title="old rule")
    assert not version_readiness(version=ready_version).ready
    ChecklistItem.objects.filter(pk=item.pk).update(active=False)
    assert version_readiness(version=ready_version).ready


def test_new_checklist_item_makes_a_ready_version_not_ready_once_its_grace_ends(ready_version, operator):
    from agents.services import checklist_item_add

    item = checklist_item_add(actor=operator, dimension="fallback", key="fallback.pager_rota",
                              title="A pager rota exists")
    assert version_readiness(version=ready_version).ready  # tests/agents/test_checklist_grace.py
    readiness = version_readiness(version=ready_version, now=item.grace_until)
    assert readiness.failing == ["fallback.pager_rota: not evaluated"]


def test_every_automatic_check_is_registered_by_the_app_that_holds_its_data(version):
    # Registered at start-up by telemetry and escalations: a missing provider would quietly make
    # versions "ready" with fewer checks.
    keys = [c.key for c in automatic_checks(version=version)]
    assert sorted(keys) == ["fallback.escalation_context", "observability.trace_coverage",
                            "performance.error_rate", "performance.p95_latency", "reliability.identical_inputs"]
