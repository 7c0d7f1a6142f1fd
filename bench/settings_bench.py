"""Benchmark settings: the production settings plus a bare JSON view to measure against."""
from rolloutops.settings import *  # noqa: F401,F403

ROOT_URLCONF = "bench.urls"
SECURE_SSL_REDIRECT = False
LOGGING = {"version": 1, "disable_existing_loggers": True, "root": {"level": "ERROR", "handlers": []}}
