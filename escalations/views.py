"""Pages of the escalations app."""
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .models import EscalationTicket


@require_GET
def queue(request):
    return render(request, "escalations/queue.html", {"tickets": EscalationTicket.objects.filter(status="open")[:100]})
