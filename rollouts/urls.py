from django.urls import path

from . import views

app_name = "rollouts"
urlpatterns = [
    path("", views.rollout_list, name="list"),
    path("approvals/", views.approvals, name="approvals"),
]
