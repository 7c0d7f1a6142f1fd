from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "telemetry"
    verbose_name = "Events and shadow statistics"

    def ready(self):
        # Imported here, not at the top: models cannot load while Django builds the app registry.
        from agents.readiness import register_automatic_checks

        from .readiness import version_event_checks

        register_automatic_checks(version_event_checks)
