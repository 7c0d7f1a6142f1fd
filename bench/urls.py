"""The product's URLs plus /bench/bare: a Django JSON view with no auth and no query (the baseline)."""
from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.urls import include, path


@login_not_required
def bare(request):
    return JsonResponse({"handler": "human", "shadow": False, "rollout": None, "stage": None,
                         "traffic_percent": 0.0, "bucket": None})


urlpatterns = [
    path("bench/bare", bare),
    path("", include("console.urls")),
]
