"""Fixtures of the telemetry tests: a shadow rollout and an events client."""
import pytest

from tests.telemetry.factories import rollout_with_history


@pytest.fixture
def shadow_rollout(db):
    return rollout_with_history()


@pytest.fixture
def events_client(api_client_for, operator):
    return api_client_for(operator, "events:write")
