"""The URL map: the overview and /metrics, every app's pages, the core's, the API under /api/v1/."""
from django.contrib import admin
from django.urls import include, path

from rollouts.api import route_view

from . import views
from .api import api_patterns, claim_next_view, events_view

handler403 = "rolloutops.views.forbidden"
handler404 = "rolloutops.views.not_found"  # JSON under /api/, the page elsewhere
handler500 = "rolloutops.views.server_error"  # JSON under /api/; 503 + Retry-After when a dependency is down

urlpatterns = [
    path("api/v1/route", route_view),  # the hot path: first, and ahead of django-ninja (rollouts/api.py says why)
    path("api/v1/escalations/claim-next", claim_next_view),  # the reviewers' hot path (console/api.py says why)
    path("api/v1/events", events_view),  # the runtimes' hot path (console/api.py says why)
    path("", views.overview, name="overview"),
    path("metrics", views.metrics, name="metrics"),
    path("", include("rolloutops.urls")),
    path("agents/", include("agents.urls")),
    path("rollouts/", include("rollouts.urls")),
    path("escalations/", include("escalations.urls")),
    api_patterns,
    path("admin/", admin.site.urls),
]
