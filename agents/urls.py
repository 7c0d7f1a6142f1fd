"""Pages of the agents app under /agents/."""
from django.urls import path

from . import views

app_name = "agents"
urlpatterns = [
    path("", views.agent_list, name="list"),
    path("new/", views.agent_create, name="create"),
    path("<slug:slug>/", views.agent_detail, name="detail"),
    path("<slug:slug>/versions/new/", views.version_create, name="version-create"),
    path("<slug:slug>/versions/<str:version>/", views.version_detail, name="version"),
    path("<slug:slug>/versions/<str:version>/evaluations/", views.evaluation_create, name="evaluation-create"),
    path("<slug:slug>/versions/<str:version>/checklist/", views.checklist_item_create, name="checklist-item-create"),
]
