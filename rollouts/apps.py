from django.apps import AppConfig


class RolloutsConfig(AppConfig):
    name = "rollouts"
    verbose_name = "Rollouts"

    def ready(self):
        # Imported here, not at the top: models cannot load while Django builds the app registry.
        from agents.links import register_rollout_reader

        from .selectors import AgentRollouts

        register_rollout_reader(AgentRollouts())
