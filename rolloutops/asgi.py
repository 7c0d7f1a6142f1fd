"""ASGI entry point."""
import os

from django.core.asgi import get_asgi_application

from rolloutops.heap import freeze_start_up_heap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rolloutops.settings")
application = get_asgi_application()
freeze_start_up_heap()
