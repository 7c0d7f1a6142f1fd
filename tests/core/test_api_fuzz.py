"""A bounded schemathesis pass over every endpoint of the OpenAPI document, as an operator and as a
reviewer (bearer tokens): generated valid and invalid requests, each answered without a 5xx, with a
status the document lists and its declared content type. Derandomized (a fixed seed) and a few
cases per endpoint, so it costs seconds; scripts/fuzz runs the same pass with 30,000 cases per role
(docs/hardening.md)."""
import logging

import pytest
from django.core.wsgi import get_wsgi_application

from tests.core.api_fuzz import ROLES, fuzz_role, load_schema, seed_world

# Per endpoint and generation mode (valid, invalid): ~400 cases per role.
MAX_EXAMPLES = 6


@pytest.fixture
def quiet_request_log():
    """Thousands of 4xx are the point here; their warning lines are not."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ROLES)
def test_generated_requests_get_documented_answers_and_never_a_5xx(role, quiet_request_log):
    world = seed_world()
    schema = load_schema(get_wsgi_application())
    operations = [result.ok() for result in schema.get_all_operations()]
    tally = fuzz_role(schema, world=world, role=role, max_examples=MAX_EXAMPLES, seed_value=11)

    assert len(operations) >= 35, "every endpoint of the document is exercised"
    assert tally.cases >= 5 * len(operations)
    assert tally.server_errors == 0 and not tally.failures, "\n".join(tally.failures.values())
    # The pass reached the endpoints' own code, not only the auth and validation layers.
    assert tally.statuses[200] > 0 and tally.statuses[404] > 0 and tally.statuses[422] > 0
