"""The cross-app pages: the overview of every agent, and /metrics for Prometheus."""
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from rolloutops import policy
from rolloutops.auth import bearer_token, scope_refusal
from rolloutops.pages import htmx_partial, require_action

from .metrics import metrics_exposition
from .selectors import overview_rows, overview_totals


@require_GET
@require_action("overview.read")
def overview(request):
    rows = overview_rows()
    context = {"rows": rows, "totals": overview_totals(rows)}
    template = "overview.html#overview-table" if htmx_partial(request) else "overview.html"
    return render(request, template, context)


def _plain(text: str, status: int) -> HttpResponse:
    return HttpResponse(text + "\n", status=status, content_type="text/plain")


@require_GET
def metrics(request):
    """For Prometheus: a bearer token with the `metrics:read` scope (or a `user` token, as its owner),
    or a signed-in person; the owner or the person needs a role (rolloutops/policy.py)."""
    token = bearer_token(request)
    if token is not None:
        user = token.user
        if (refused := scope_refusal(token, "metrics.read")) is not None:
            return _plain(refused, 403)
    elif request.user.is_authenticated:
        user = request.user
    else:
        response = _plain("authentication required: Authorization: Bearer <token>", 401)
        response["WWW-Authenticate"] = "Bearer"
        return response
    refused = policy.refusal(user, "metrics.read")
    if refused is not None:
        return _plain(str(refused.detail), 403)
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
