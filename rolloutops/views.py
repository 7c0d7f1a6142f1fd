"""Pages of the core: a person's account (their time zone), the audit log (with CSV export), health
and readiness, error pages."""
import csv
import json
import sys

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods
from django.views.defaults import page_not_found
from django.views.defaults import server_error as default_server_error

from .pages import htmx_partial, paginate, require_action
from .probes import RETRY_AFTER_SECONDS, dependencies_status, dependency_down
from .exceptions import Invalid
from .selectors import audit_entries, audit_filter_choices
from .timezones import chosen_zone, remember, time_zone_set, zone_groups

@require_http_methods(["GET", "POST"])
def account(request):
    """Who I am, my roles, and the time zone my pages show times in. The proposal of the browser's
    zone (templates/base.html) posts here too, with where to go back to."""
    error = None
    if request.method == "POST":
        choice = request.POST.get("time_zone", "")
        try:
            time_zone_set(user=request.user, time_zone=choice)
        except Invalid as exc:
            error = exc.detail
        else:
            remember(request, choice.strip())
            messages.success(request, f"Times are now shown in {choice.strip()}.")
            back = request.POST.get("next", "")
            if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
                back = "account"
            return redirect(back)
    context = {"zones": zone_groups(), "chosen": chosen_zone(request), "error": error,
               "browser_hint": request.POST.get("time_zone", "") if error else ""}
    return render(request, "account.html", context, status=422 if error else 200)


AUDIT_FILTERS = ("action", "actor", "object_type", "object_id", "since", "until", "q")


def _audit_filters(request) -> dict:
    return {key: request.GET.get(key, "").strip() for key in AUDIT_FILTERS}


@require_GET
@require_action("audit.read")
def audit_log(request):
    filters = _audit_filters(request)
    page = paginate(request, audit_entries(**filters), per_page=50)
    context = {"page": page, "filters": filters, **audit_filter_choices()}
    template = "audit.html#audit-table" if htmx_partial(request) else "audit.html"
    return render(request, template, context)


def _json(value) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


class _Echo:
    def write(self, value):
        return value


@require_GET
@require_action("audit.read")
def audit_export(request):
    rows = audit_entries(**_audit_filters(request)).iterator(chunk_size=2000)
    writer = csv.writer(_Echo())
    # "hash" is empty and "seq" (the chain position, last so existing readers keep their columns)
    # too for an entry the sealer has not linked yet.
    header = ["id", "at", "actor", "action", "object_type", "object_id", "object", "before", "after", "source_ip", "hash",
              "seq"]

    def lines():
        yield writer.writerow(header)
        for e in rows:
            yield writer.writerow([e.pk, e.at.isoformat(), e.actor_label, e.action, e.object_type, e.object_id,
                                   e.object_repr, _json(e.before), _json(e.after), e.source_ip or "", e.hash or "",
                                   "" if e.seq is None else e.seq])

    response = StreamingHttpResponse(lines(), content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="rolloutops-audit-{stamp}.csv"'
    return response


@login_not_required
@require_GET
def healthz(request):
    """Liveness: the process answers. No dependency is touched, so a database or cache outage
    never makes an orchestrator restart healthy processes (that is /readyz's job)."""
    return JsonResponse({"status": "ok"})


@login_not_required
@require_GET
def readyz(request):
    """Readiness: 200 when the database, the cache and the broker all answer, else 503 naming
    what is down (the errors themselves go to the log, not to an unauthenticated caller)."""
    status = dependencies_status()
    down = [name for name, error in status.items() if error]
    checks = {name: ("down" if error else "ok") for name, error in status.items()}
    if down:
        response = JsonResponse({"status": "unavailable", "down": down, "checks": checks,
                                 "detail": f"not ready: {', '.join(down)} down"}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return JsonResponse({"status": "ready", "checks": checks})


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse({"detail": f"no API endpoint at {request.path}"}, status=404)
    return page_not_found(request, exception)


def server_error(request):
    """Django calls this from inside its exception handling, so the exception is sys.exception()."""
    exc = sys.exc_info()[1]
    down = dependency_down(exc)
    if down:
        response = (JsonResponse({"detail": f"the {down} is unavailable; retry shortly"}, status=503)
                    if _is_api(request) else
                    HttpResponse(f"The {down} is unavailable. Retry in a few seconds.", status=503,
                                 content_type="text/plain; charset=utf-8"))
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if _is_api(request):
        return JsonResponse({"detail": "internal error; it has been logged"}, status=500)
    return default_server_error(request)


def signin_locked_out(request, original_response=None, credentials=None):
    """django-axes calls this instead of the sign-in page once a username and address are locked out."""
    from django.conf import settings

    username = (credentials or {}).get("username") or request.POST.get("username", "")
    context = {"username": str(username)[:150], "limit": settings.AXES_FAILURE_LIMIT,
               "minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)}
    return render(request, "registration/locked_out.html", context, status=429)


def forbidden(request, exception=None):
    return render(request, "403.html", {"message": str(exception) if exception else ""}, status=403)
