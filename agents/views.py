"""Pages of the agents app."""
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .models import Agent


@require_GET
def agent_list(request):
    return render(request, "agents/agent_list.html", {"agents": Agent.objects.all()})
