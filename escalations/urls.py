"""Pages of the escalations app: the queue, my tickets, a ticket and its actions."""
from django.urls import path

from . import views

app_name = "escalations"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("mine/", views.mine, name="mine"),
    path("claim-next/", views.claim_next, name="claim-next"),
    path("<int:pk>/", views.ticket_detail, name="ticket"),
    path("<int:pk>/claim/", views.claim, name="claim"),
    path("<int:pk>/renew/", views.renew, name="renew"),
    path("<int:pk>/release/", views.release, name="release"),
    path("<int:pk>/resolve/", views.resolve, name="resolve"),
]
