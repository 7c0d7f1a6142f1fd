"""Ask an endpoint served by a plain view ahead of django-ninja (console/api.py, `_served_first`)
and its django-ninja operation alone the same call, each against the database as it is (whatever
the call writes is rolled back before the other asks)."""
from django.db import transaction
from django.test import override_settings
from django.urls import path

from console.api import api

# A URLconf of the API alone, so the path reaches the ninja operation.
urlpatterns = [path("api/v1/", api.urls)]


def _ask(client, path_, body, headers, content_type, method):
    with transaction.atomic():
        if method == "post":
            response = client.post(path_, body, content_type=content_type, headers=headers)
        else:
            response = getattr(client, method)(path_, headers=headers)
        transaction.set_rollback(True)
    return response.status_code, response.get("Content-Type"), response.content, response.get("Allow")


def served_and_specified(client, path_, body, headers=None, *, content_type="application/json", method="post"):
    """(status, content type, body, Allow) from the whole URL map, then from the operation alone."""
    served = _ask(client, path_, body, headers or {}, content_type, method)
    with override_settings(ROOT_URLCONF=__name__):
        specified = _ask(client, path_, body, headers or {}, content_type, method)
    return served, specified
