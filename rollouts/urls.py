from django.urls import path

from . import shadow_views, views

app_name = "rollouts"
urlpatterns = [
    path("", views.rollout_list, name="list"),
    path("approvals/", views.approvals, name="approvals"),
    path("start/", views.rollout_create, name="start"),
    path("revert/<slug:slug>/", views.production_revert, name="revert"),
    path("<int:rollout_id>/", views.rollout_detail, name="detail"),
    path("<int:rollout_id>/shadow/", shadow_views.shadow_panel, name="shadow"),
    path("<int:rollout_id>/discrepancies/", shadow_views.discrepancies, name="discrepancies"),
    path("<int:rollout_id>/pairs/<path:request_key>/", shadow_views.pair, name="pair"),
    path("<int:rollout_id>/plan/", views.rollout_plan, name="plan"),
    path("<int:rollout_id>/<str:action>/", views.rollout_action, name="action"),
    path("promotions/<int:promotion_id>/<str:decision>/", views.promotion_decide, name="decide"),
]
