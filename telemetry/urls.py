"""Pages of the telemetry app, mounted at /telemetry/."""
from django.urls import path

from . import views

app_name = "telemetry"
urlpatterns = [
    path("rollouts/<int:rollout_id>/shadow/", views.shadow_panel, name="shadow-panel"),
    path("rollouts/<int:rollout_id>/pairs/<path:request_key>/", views.pair, name="pair"),
]
