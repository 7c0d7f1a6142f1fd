"""/metrics: Prometheus text for scrapers with a `metrics:read` token (or a person); 401 without."""
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from rollouts.models import StageMode
from telemetry.models import StageHour
from tests.telemetry.factories import rollout_with_history

pytestmark = pytest.mark.django_db


def samples(response) -> dict[str, list]:
    """name -> [(labels, value)], parsed as Prometheus itself would."""
    families = text_string_to_metric_families(response.content.decode())
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in families}


def test_metrics_need_a_token(client):
    response = client.get("/metrics")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Bearer"


def test_a_revoked_or_unknown_token_is_401(client):
    response = client.get("/metrics", headers={"Authorization": "Bearer rlo_not-a-real-token"})
    assert response.status_code == 401


@pytest.mark.parametrize("scope", ["route:read", "events:write", "escalations:write"])
def test_a_runtime_token_of_another_scope_is_refused(api_client_for, operator, scope):
    response = api_client_for(operator, scope).get("/metrics")
    assert response.status_code == 403 and "metrics:read" in response.content.decode()


def test_a_metrics_token_of_someone_without_a_role_is_refused(api_client_for):
    from tests.factories import UserFactory

    response = api_client_for(UserFactory(username="prometheus-nobody"), "metrics:read").get("/metrics")
    assert response.status_code == 403


def test_metrics_expose_rollouts_guardrails_agreement_and_queue(api_client_for, operator):
    call_command("seed_demo")
    response = api_client_for(operator, "metrics:read").get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=0.0.4")
    metrics = samples(response)
    traffic = {labels["stage"]: value for labels, value in metrics["rolloutops_rollout_traffic_percent"]}
    assert traffic["expand-25"] == 25
    thresholds = {labels["guardrail"]: value for labels, value in metrics["rolloutops_guardrail_threshold"]}
    assert thresholds["max_error_rate"] == 0.05
    flagged = {labels["agent"]: value for labels, value in metrics["rolloutops_shadow_flagged_segments"]}
    assert flagged["kyc-document-checker"] >= 1
    assert any(labels == {"priority": "P1"} for labels, _ in metrics["rolloutops_escalations_open"])
    # Each live rollout's guardrails share its error budget, and their evidence is scraped beside it.
    budgets = {}
    for labels, value in metrics["rolloutops_guardrail_alpha"]:
        budgets[labels["rollout"]] = budgets.get(labels["rollout"], 0) + value
    assert budgets and all(abs(total - 0.01) < 1e-9 for total in budgets.values())
    assert "rolloutops_guardrail_evidence_ratio" in metrics
    for name in ("rolloutops_rollout_stage_index", "rolloutops_rollout_paused", "rolloutops_stage_samples",
                 "rolloutops_guardrail_value", "rolloutops_guardrail_breached", "rolloutops_shadow_pairs",
                 "rolloutops_shadow_agreement", "rolloutops_shadow_agreement_lower",
                 "rolloutops_escalations_claimed", "rolloutops_escalations_sla_breached"):
        assert name in metrics, name


def test_a_person_signed_in_reads_metrics(client, manager):
    client.force_login(manager)
    assert client.get("/metrics").status_code == 200


def test_large_counts_print_exactly(api_client_for, operator):
    """A stage with 1,234,567 samples is scraped as exactly that, not rounded to 1.23457e+06."""
    rollout = rollout_with_history(stages=(("staging", StageMode.OFF, 0), ("canary", StageMode.LIVE, 5)))
    now = timezone.now()
    StageHour.objects.create(rollout=rollout, stage="canary", hour=now.replace(minute=0, second=0, microsecond=0),
                             arm="candidate", decisions=1_234_567, first_event_at=now - timedelta(minutes=5), last_event_at=now,
                             updated_at=now)
    response = api_client_for(operator, "metrics:read").get("/metrics")
    assert samples(response)["rolloutops_stage_samples"] == [
        ({"rollout": str(rollout.pk), "agent": rollout.agent.slug, "version": rollout.version.version,
          "stage": "canary"}, 1_234_567)
    ]
