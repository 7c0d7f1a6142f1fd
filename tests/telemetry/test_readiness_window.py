"""The readiness checks' event window, cached under the version's newest agent event id (telemetry/readiness.py)."""
import pytest

from agents.readiness import version_readiness
from telemetry.readiness import window_figures
from tests.agents.conftest import make_events
from tests.factories import AgentVersionFactory


@pytest.fixture
def version(db):
    return AgentVersionFactory(agent__slug="claims-triage", version="1.4.0")


def error_rate(version):
    return next(c for c in version_readiness(version=version).dimensions["performance"].automatic
                if c.key == "performance.error_rate")


def test_an_event_arriving_after_a_view_counts_in_the_next_view(version):
    make_events(version, 100)
    assert error_rate(version).measured == 0.0
    assert error_rate(version).verdict == "pass"
    make_events(version, 20, start=100, outcome="error")  # newer ids: the cached figures no longer apply
    check = error_rate(version)
    assert check.measured == pytest.approx(20 / 120)
    assert check.samples == 120
    assert check.verdict == "fail"


def test_a_view_between_events_reads_one_index_probe_not_the_window(version, django_assert_num_queries):
    make_events(version, 150, latency_ms=80.0)
    first = window_figures(version)
    with django_assert_num_queries(1):
        assert window_figures(version) == first
    assert (first.total, first.timed, first.p95) == (150, 150, 80.0)


def test_versions_do_not_share_figures(version):
    other = AgentVersionFactory(agent=version.agent, version="1.5.0")
    make_events(version, 100, outcome="error")
    make_events(other, 100, start=100)
    assert window_figures(version).errors == 100
    assert window_figures(other).errors == 0


def test_a_version_without_events_has_empty_figures(version, django_assert_num_queries):
    with django_assert_num_queries(1):
        figures = window_figures(version)
    assert figures.total == 0 and figures.p95 is None
