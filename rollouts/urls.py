from django.urls import path

from . import views

app_name = "rollouts"
urlpatterns = [
    path("", views.rollout_list, name="list"),
    path("approvals/", views.approvals, name="approvals"),
    path("start/", views.rollout_create, name="start"),
    path("revert/<slug:slug>/", views.production_revert, name="revert"),
    path("<int:rollout_id>/", views.rollout_detail, name="detail"),
    path("<int:rollout_id>/shadow/", views.shadow_panel, name="shadow"),
    path("<int:rollout_id>/discrepancies/", views.discrepancies, name="discrepancies"),
    path("<int:rollout_id>/pairs/<path:request_key>/", views.pair, name="pair"),
    path("<int:rollout_id>/plan/", views.rollout_plan, name="plan"),
    path("<int:rollout_id>/<str:action>/", views.rollout_action, name="action"),
    path("promotions/<int:promotion_id>/<str:decision>/", views.promotion_decide, name="decide"),
]
