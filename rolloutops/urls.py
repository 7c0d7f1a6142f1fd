"""URL map: pages per app, the API under /api/v1/, audit, health and metrics."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views
from .api import api
from .metrics import metrics

handler403 = "rolloutops.views.forbidden"
handler404 = "rolloutops.views.not_found"  # JSON under /api/, the page elsewhere
handler500 = "rolloutops.views.server_error"  # JSON under /api/; 503 + Retry-After when a dependency is down

urlpatterns = [
    path("", views.overview, name="overview"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("audit/", views.audit_log, name="audit"),
    path("audit/export.csv", views.audit_export, name="audit-export"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("agents/", include("agents.urls")),
    path("rollouts/", include("rollouts.urls")),
    path("escalations/", include("escalations.urls")),
    path("telemetry/", include("telemetry.urls")),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]
