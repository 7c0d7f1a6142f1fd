from django.apps import AppConfig


class RolloutopsConfig(AppConfig):
    name = "rolloutops"
    verbose_name = "rolloutops core (tokens, audit)"
