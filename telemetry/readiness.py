"""The readiness checks measured from a version's own events (reliability, observability,
performance), registered with the readiness gate by TelemetryConfig.ready (agents/readiness.py)."""
from __future__ import annotations

from typing import NamedTuple

from agents.models import AgentVersion, Dimension
from agents.readiness import AutomaticCheck, automatic_check, percentile_nearest_rank, share
from rolloutops.cache import cache_get, cache_set

from .models import Event, EventKind, Outcome

# Every check reads the version's most recent agent events, at most this many (one walk of the
# (version, kind, -id) index), so its cost stays flat as telemetry grows to millions.
CHECK_WINDOW = 10_000
PERFORMANCE_MIN_SAMPLES = 100  # agent events that carry a latency
RELIABILITY_MIN_GROUPS = 20  # input_hash values seen at least twice
RELIABILITY_MIN_CONSISTENT_SHARE = 0.95
OBSERVABILITY_MIN_EVENTS = 100
OBSERVABILITY_MIN_TRACE_SHARE = 0.99
ERROR_OUTCOMES = frozenset({Outcome.ERROR, Outcome.TIMEOUT})
# The window's figures change only when the version receives an agent event, which moves its newest
# event id: they are cached under that id (one index probe a view instead of reading and folding
# 10,000 rows; bench/rollout_page.py). The short TTL bounds what the id cannot see: an event whose
# transaction commits after one with a higher id, and a retention drop inside the window.
WINDOW_CACHE_SECONDS = 30


class WindowFigures(NamedTuple):
    """What the checks measure in the window; the thresholds (the version's SLA) are applied after."""

    total: int
    timed: int
    errors: int
    traced: int
    p95: float | None
    repeated: int
    consistent: int


def _agent_events(version: AgentVersion):
    return Event.objects.filter(version=version, kind=EventKind.AGENT).order_by("-id")


def window_figures(version: AgentVersion) -> WindowFigures:
    """The window's figures, cached under the version's newest agent event id (see WINDOW_CACHE_SECONDS)."""
    newest = _agent_events(version).values_list("id", flat=True).first()
    if newest is None:
        return WindowFigures(0, 0, 0, 0, None, 0, 0)
    key = f"readiness:window:v1:{version.pk}:{newest}"
    found = cache_get(key)  # a cache outage computes, never fails (rolloutops/cache.py)
    if found is None:
        found = _window_figures(version)
        cache_set(key, tuple(found), WINDOW_CACHE_SECONDS)
        return found
    return WindowFigures(*found)


def _window_figures(version: AgentVersion) -> WindowFigures:
    """One indexed query: the newest CHECK_WINDOW agent events of the version, folded here."""
    window = list(
        _agent_events(version)
        .values_list("latency_ms", "outcome", "has_trace", "input_hash", "label")[:CHECK_WINDOW]
    )
    total = len(window)
    latencies = [row[0] for row in window if row[0] is not None]
    timed = len(latencies)
    errors = sum(1 for row in window if row[1] in ERROR_OUTCOMES)
    traced = sum(1 for row in window if row[2])
    p95 = percentile_nearest_rank(latencies, 0.95) if timed >= PERFORMANCE_MIN_SAMPLES else None
    labels_by_input: dict[str, set[str]] = {}
    seen: dict[str, int] = {}
    for row in window:
        if row[3]:
            seen[row[3]] = seen.get(row[3], 0) + 1
            labels_by_input.setdefault(row[3], set()).add(row[4])
    repeated = [h for h, n in seen.items() if n >= 2]
    consistent = sum(1 for h in repeated if len(labels_by_input[h]) == 1)
    return WindowFigures(total, timed, errors, traced, p95, len(repeated), consistent)


def version_event_checks(version: AgentVersion) -> list[AutomaticCheck]:
    """The reliability, observability and performance checks over the version's newest CHECK_WINDOW agent events."""
    total, timed, errors, traced, p95, repeated, consistent = window_figures(version)
    return [
        automatic_check(key="reliability.identical_inputs", title="Identical inputs get identical labels",
                        dimension=Dimension.RELIABILITY, measured=share(consistent, repeated),
                        threshold=RELIABILITY_MIN_CONSISTENT_SHARE, comparison=">=", unit="share",
                        samples=repeated, min_samples=RELIABILITY_MIN_GROUPS),
        automatic_check(key="observability.trace_coverage", title="Agent events with a structured trace",
                        dimension=Dimension.OBSERVABILITY, measured=share(traced, total),
                        threshold=OBSERVABILITY_MIN_TRACE_SHARE, comparison=">=", unit="share",
                        samples=total, min_samples=OBSERVABILITY_MIN_EVENTS),
        automatic_check(key="performance.p95_latency", title="p95 latency within the SLA",
                        dimension=Dimension.PERFORMANCE, measured=p95, threshold=float(version.sla_p95_latency_ms),
                        comparison="<=", unit="ms", samples=timed, min_samples=PERFORMANCE_MIN_SAMPLES),
        automatic_check(key="performance.error_rate", title="Error rate (errors and timeouts) within the SLA",
                        dimension=Dimension.PERFORMANCE, measured=share(errors, total),
                        threshold=version.sla_max_error_rate, comparison="<=", unit="share",
                        samples=total, min_samples=PERFORMANCE_MIN_SAMPLES),
    ]
