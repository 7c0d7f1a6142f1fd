"""WSGI entry for the benchmarks' settings (as rolloutops/wsgi.py, the start-up heap frozen)."""
import os

from django.core.wsgi import get_wsgi_application

from rolloutops.heap import freeze_start_up_heap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings_bench")
application = get_wsgi_application()
freeze_start_up_heap()
