"""The default readiness checklist: one item per thing that must hold, in five dimensions."""
from django.db import migrations

DEFAULT_ITEMS = [
    ("reliability", "reliability.malformed_inputs", "Handles malformed inputs",
     "Invalid, truncated or hostile inputs are rejected or handled without crashing or guessing."),
    ("reliability", "reliability.graceful_timeouts", "Times out gracefully on slow downstream systems",
     "Every call to a downstream system has a timeout and the agent degrades or escalates when it fires."),
    ("reliability", "reliability.retries_transient", "Retries transient failures",
     "Transient errors are retried with backoff and a bound; permanent errors are not retried."),
    ("reliability", "reliability.consistent_results", "Consistent results for identical inputs",
     "The same input gives the same decision (also measured automatically from input_hash)."),
    ("observability", "observability.structured_logs", "Structured logs of every step",
     "Every action, tool call, reasoning step and outcome is logged in structured form."),
    ("observability", "observability.dashboards", "Visible on dashboards",
     "Those logs and the agent's key figures are visible on dashboards the on-call team uses."),
    ("fallback", "fallback.escalation_paths", "An escalation path for every unfinished case",
     "Every case the agent cannot finish has a path to a human."),
    ("fallback", "fallback.context_preserved", "Escalations carry the full context",
     "Escalations carry the input, what the agent already tried and its partial output."),
    ("security", "security.encryption", "Data flows encrypted",
     "Data in transit and at rest is encrypted."),
    ("security", "security.least_privilege", "Least-privilege credentials for tool integrations",
     "Each tool integration uses credentials scoped to what it needs, nothing more."),
    ("security", "security.auditable_access", "Access patterns auditable",
     "Who and what accessed which data can be reconstructed from logs."),
    ("performance", "performance.latency_sla", "Latency meets the SLA",
     "Latency meets the version's SLA under expected and peak load."),
    ("performance", "performance.throughput", "Throughput meets the SLA",
     "Throughput meets the version's SLA under expected and peak load."),
    ("performance", "performance.resource_use", "Resource use within budget",
     "CPU, memory, tokens and cost stay within budget under expected and peak load."),
]


def add_defaults(apps, schema_editor):
    ChecklistItem = apps.get_model("agents", "ChecklistItem")
    for position, (dimension, key, title, description) in enumerate(DEFAULT_ITEMS):
        ChecklistItem.objects.get_or_create(
            key=key, defaults={"dimension": dimension, "title": title, "description": description,
                               "position": (position + 1) * 10},
        )


def remove_unused_defaults(apps, schema_editor):
    ChecklistItem = apps.get_model("agents", "ChecklistItem")
    ChecklistItem.objects.filter(key__in=[k for _, k, _, _ in DEFAULT_ITEMS], results__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("agents", "0001_initial")]
    operations = [migrations.RunPython(add_defaults, remove_unused_defaults)]
