"""rolloutops: the control plane that takes AI agents from prototype to production."""
from .celery import app as celery_app

__all__ = ["celery_app"]
