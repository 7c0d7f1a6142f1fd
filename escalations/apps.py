from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import pre_delete


class EscalationsConfig(AppConfig):
    name = "escalations"
    verbose_name = "Escalations"

    def ready(self):
        # Imported here, not at the top: models cannot load while Django builds the app registry.
        from agents.readiness import register_automatic_checks

        from .readiness import version_ticket_checks

        register_automatic_checks(version_ticket_checks)
        pre_delete.connect(_release_claims_of_removed_person, sender=settings.AUTH_USER_MODEL,
                           dispatch_uid="escalations.release_claims_of_removed_person")


def _release_claims_of_removed_person(sender, instance, **kwargs):
    # Sent inside the deletion's transaction (Django's collector), before the claimant column is
    # emptied: the claims go back to the queue, recorded, or the deletion fails with them.
    from .services import tickets_release_claims_of

    tickets_release_claims_of(instance)
