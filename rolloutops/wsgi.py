"""WSGI entry point (gunicorn rolloutops.wsgi)."""
import os

from django.core.wsgi import get_wsgi_application

from rolloutops.heap import freeze_start_up_heap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rolloutops.settings")
application = get_wsgi_application()
freeze_start_up_heap()
