"""Pages of the rollouts app."""
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .models import PromotionRequest, Rollout


@require_GET
def rollout_list(request):
    return render(request, "rollouts/rollout_list.html", {"rollouts": Rollout.objects.all()[:100]})


@require_GET
def approvals(request):
    return render(request, "rollouts/approvals.html", {"pending": PromotionRequest.objects.filter(status="pending")})
