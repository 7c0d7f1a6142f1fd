"""The rollout page and its live panel read the rollout's stages once, however many questions the
gates, the figures, the charts and the stage table ask of them (bench/rollout_page.py)."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.telemetry.factories import rollout_with_history

pytestmark = pytest.mark.django_db


def _stage_reads(client, url, **headers) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, headers=headers)
    assert response.status_code == 200
    return sum('"rollouts_rolloutstage"' in q["sql"] for q in queries.captured_queries), response.content.decode()


@pytest.mark.parametrize("stages", [
    (("staging", "off", 0), ("shadow", "shadow", 0)),
    (("staging", "off", 0), ("shadow", "shadow", 0), ("canary", "live", 5), ("full", "live", 100)),
])
def test_the_page_and_the_panel_read_the_stages_once(client, operator, stages):
    rollout = rollout_with_history(stages=stages)
    client.force_login(operator)
    reads, html = _stage_reads(client, f"/rollouts/{rollout.pk}/")
    assert reads == 1
    assert all(name in html for name, _, _ in stages) and "Shadow comparison" in html
    reads, html = _stage_reads(client, f"/rollouts/{rollout.pk}/", HX_Request="true")
    assert reads == 1 and stages[-1][0] in html
