from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console: the cross-app pages and the wiring (URLs, API root, /metrics, demo)"
