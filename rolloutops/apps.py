from django.apps import AppConfig
from django.core.checks import Tags, register
from django.db.models.signals import post_migrate


class RolloutopsConfig(AppConfig):
    name = "rolloutops"
    verbose_name = "rolloutops core (tokens, audit)"

    def ready(self):
        # Imported here, not at the top: models cannot load while Django builds the app registry.
        from . import signals  # connects the audit receivers
        from .checks import audit_key_configured
        from .db import use_compiled_timestamptz_loader

        register(audit_key_configured, Tags.security, deploy=True)
        use_compiled_timestamptz_loader()

        post_migrate.connect(signals.ensure_role_groups, sender=self, dispatch_uid="rolloutops.ensure_role_groups")
