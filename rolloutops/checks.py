"""System checks for a deployment (`manage.py check --deploy`); registered in apps.py."""
from django.conf import settings
from django.core.checks import Warning


def audit_key_configured(app_configs, **kwargs):
    if settings.AUDIT_CHECKPOINT_KEY or settings.EMBEDDED:
        return []
    return [Warning(
        "AUDIT_CHECKPOINT_KEY is not set: the audit chain is keyed with a key generated under var/ "
        "on each host, which other hosts cannot verify and which sits beside the data it protects.",
        hint="Set AUDIT_CHECKPOINT_KEY to a long random value, the same on every process (docs/operations.md).",
        id="rolloutops.W001",
    )]
