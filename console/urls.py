"""The URL map: the overview and /metrics, every app's pages, the core's, the API under /api/v1/."""
from django.contrib import admin
from django.urls import include, path

from . import views
from .api import api

handler403 = "rolloutops.views.forbidden"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("metrics", views.metrics, name="metrics"),
    path("", include("rolloutops.urls")),
    path("agents/", include("agents.urls")),
    path("rollouts/", include("rollouts.urls")),
    path("escalations/", include("escalations.urls")),
    path("telemetry/", include("telemetry.urls")),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]
