from django.apps import AppConfig


class EscalationsConfig(AppConfig):
    name = "escalations"
    verbose_name = "Escalations"

    def ready(self):
        # Imported here, not at the top: models cannot load while Django builds the app registry.
        from agents.readiness import register_automatic_checks

        from .readiness import version_ticket_checks

        register_automatic_checks(version_ticket_checks)
