from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents and readiness"

    def ready(self):
        # Imported here, not at the top: models cannot load while Django builds the app registry.
        from .signals import ensure_default_checklist

        post_migrate.connect(ensure_default_checklist, sender=self, dispatch_uid="agents.ensure_default_checklist")
