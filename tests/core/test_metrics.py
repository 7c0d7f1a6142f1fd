"""/metrics: Prometheus text for scrapers with a token; 401 without."""
import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_metrics_need_a_token(client):
    response = client.get("/metrics")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Bearer"


def test_metrics_expose_rollouts_guardrails_agreement_and_queue(api_client_for, operator):
    call_command("seed_demo")
    response = api_client_for(operator, "user").get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert 'rolloutops_rollout_traffic_percent{rollout="' in text and 'stage="expand-25"} 25' in text
    assert 'rolloutops_guardrail_threshold{' in text and 'guardrail="max_error_rate"} 0.05' in text
    assert 'rolloutops_shadow_flagged_segments{' in text and 'agent="kyc-document-checker"' in text
    assert 'rolloutops_escalations_open{priority="P1"}' in text
    for line in text.splitlines():
        assert line.startswith("#") or " " in line  # every sample line is "name{labels} value"
