"""The claim rules: pure functions of a ticket's fields and the clock, no database."""
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from django.db.models import Q

from escalations.claims import (
    MAX_SEGMENT,
    claimable_q,
    context_is_complete,
    context_segment,
    is_claimable,
    lease_active,
    lease_duration,
    sla_breached,
    sla_duration,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
SECOND = timedelta(seconds=1)


def ticket(status="open", lease_expires_at=None, due_at=NOW, resolved_at=None):
    return SimpleNamespace(status=status, lease_expires_at=lease_expires_at, due_at=due_at, resolved_at=resolved_at)


@pytest.mark.parametrize("t, active", [
    (ticket("claimed", NOW + SECOND), True),
    (ticket("claimed", NOW), False),  # a lease ends at its instant: the next claimant may take it then
    (ticket("claimed", NOW - SECOND), False),
    (ticket("claimed", None), False),
    (ticket("open", NOW + SECOND), False),
    (ticket("resolved", NOW + SECOND), False),
])
def test_a_lease_is_active_only_while_claimed_and_before_it_ends(t, active):
    assert lease_active(t, NOW) is active


@pytest.mark.parametrize("t, claimable", [
    (ticket("open"), True),
    (ticket("claimed", NOW - SECOND), True),  # lapsed, not yet swept
    (ticket("claimed", NOW), True),
    (ticket("claimed", NOW + SECOND), False),
    (ticket("resolved"), False),
    (ticket("resolved", NOW - SECOND), False),
])
def test_open_and_lapsed_claims_may_be_taken_live_claims_and_resolved_tickets_not(t, claimable):
    assert is_claimable(t, NOW) is claimable


def test_the_query_is_the_same_rule():
    assert claimable_q(NOW) == Q(status="open") | Q(status="claimed", lease_expires_at__lte=NOW)


@pytest.mark.parametrize("t, late", [
    (ticket("open", due_at=NOW), False),  # due now is not yet late
    (ticket("open", due_at=NOW - SECOND), True),
    (ticket("claimed", NOW + SECOND, due_at=NOW - SECOND), True),  # a live claim does not stop the clock
    (ticket("resolved", due_at=NOW - SECOND, resolved_at=NOW - SECOND), False),  # resolved exactly on time
    (ticket("resolved", due_at=NOW - 2 * SECOND, resolved_at=NOW - SECOND), True),
    (ticket("resolved", due_at=NOW - SECOND, resolved_at=None), False),
    (ticket("resolved", due_at=NOW, resolved_at=NOW - SECOND), False),  # now is past due, but it was resolved in time
])
def test_a_ticket_is_late_when_unresolved_past_due_or_resolved_after(t, late):
    assert sla_breached(t, NOW) is late


def test_durations_come_from_the_settings(settings):
    settings.ROLLOUTOPS = {**settings.ROLLOUTOPS, "CLAIM_LEASE_SECONDS": 90,
                           "SLA_SECONDS": {"P1": 60, "P2": 120, "P3": 180, "P4": 240}}
    assert lease_duration() == timedelta(seconds=90)
    assert [sla_duration(p) for p in ("P1", "P2", "P3", "P4")] == [timedelta(seconds=s) for s in (60, 120, 180, 240)]


@pytest.mark.parametrize("context, segment", [
    ({"segment": "passport-non-eu"}, "passport-non-eu"),
    ({"segment": 42}, "42"),
    ({"segment": "x" * 150}, "x" * MAX_SEGMENT),
    ({"segment": ""}, ""),
    ({"segment": None}, ""),
    ({}, ""),
    (["segment"], ""),
    (None, ""),
])
def test_the_segment_of_a_context(context, segment):
    assert context_segment(context) == segment


def test_segments_keep_100_characters():
    assert MAX_SEGMENT == 100


@pytest.mark.parametrize("context, complete", [
    ({"input": "claim C-1", "attempts": [{"tool": "lookup"}]}, True),
    ({"input": {"id": 1}, "attempts": [{"tool": "a"}, {"tool": "b"}]}, True),
    ({"input": 0, "attempts": [{"tool": "a"}]}, True),  # a zero is an input
    ({"attempts": [{"tool": "a"}]}, False),
    ({"input": None, "attempts": [{"tool": "a"}]}, False),
    ({"input": "", "attempts": [{"tool": "a"}]}, False),
    ({"input": {}, "attempts": [{"tool": "a"}]}, False),
    ({"input": [], "attempts": [{"tool": "a"}]}, False),
    ({"input": "x"}, False),
    ({"input": "x", "attempts": []}, False),
    ({"input": "x", "attempts": {"tool": "a"}}, False),
    ("not a dict", False),
])
def test_a_context_is_complete_with_an_input_and_one_attempt(context, complete):
    assert context_is_complete(context) is complete
