"""Request-wide rules: hostile input stops at the door; pages need a signed-in person; a missing object
is the 404 page, invalid input the 400 page; times shown in the person's timezone; audit entries know
who and from where."""
import zoneinfo

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.html import escape
from django.views.defaults import page_not_found

from . import inputs
from .audit import RequestContext, request_context
from .exceptions import Invalid, NotFound
from .timezones import chosen_zone

# The API answers 401 itself (JSON, bearer tokens); health and metrics are for probes.
_OPEN_PREFIXES = ("/api/", "/static/", "/healthz", "/readyz", "/metrics")


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _refusal(request, status: int, detail: str, **extra):
    """The answer to input refused at the door: JSON under /api/, a plain page elsewhere (it renders
    nothing that could read the database with the hostile input: no layout, no session)."""
    if request.path.startswith("/api/") or request.path_info.startswith("/api/"):
        return JsonResponse({"detail": detail, **extra}, status=status)
    title = "Request too large" if status == 413 else "Bad request"
    return HttpResponse(f"<!doctype html><html lang=\"en\"><title>{title}</title><h1>{title}</h1>"
                        f"<p>{escape(detail)}</p><p><a href=\"/\">Back to the overview</a></p></html>",
                        status=status, content_type="text/html; charset=utf-8")


class HostileInput:
    """The request-wide rules of rolloutops/inputs.py, before sessions, CSRF or any view read the
    request: a NUL or invalid text in the path, the query string, a cookie or a form field is 400;
    a JSON body (outside the ingestion endpoints, which judge each item) with unstorable text,
    NaN/Infinity or too deep a nesting is 422, too large 413. A page whose own parameters are invalid
    (a selector's Invalid) answers 400 too, never 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refused = self.screen(request)
        if refused is not None:
            return refused
        return self.get_response(request)

    def screen(self, request):
        problem = inputs.text_problem(request.path_info)
        if problem:
            return _refusal(request, 400, f"the path {problem}")
        for where, data in (("query string", request.GET), ("cookie", request.COOKIES)):
            items = data.lists() if hasattr(data, "lists") else ((k, [v]) for k, v in data.items())
            for key, values in items:
                for text in (key, *values):
                    problem = inputs.text_problem(text)
                    if problem:
                        return _refusal(request, 400, f"{where} parameter {key[:60]!r} {problem}", field=key[:60])
        if request.method not in _BODY_METHODS:
            return None
        content_type = request.content_type or ""
        api = request.path_info.startswith("/api/")
        if api and content_type.startswith("multipart/"):
            return None  # no endpoint takes one: its parser answers 400 (and the body must stay unread)
        try:
            if content_type.startswith(_FORM_TYPES):
                for key, values in request.POST.lists():
                    for text in (key, *values):
                        problem = inputs.text_problem(text)
                        if problem:
                            return _refusal(request, 400, f"form field {key[:60]!r} {problem}", field=key[:60])
            elif api and not request.path_info.startswith(inputs.INGESTION_PATHS):
                body = request.body
                found = inputs.json_body_problem(body) if body else None
                if found:
                    where, why = found
                    return _refusal(request, 422, f"{where} {why}", field=where)
        except RequestDataTooBig:
            return _refusal(request, 413, "request body too large")
        return None

    def process_exception(self, request, exception):
        if isinstance(exception, Invalid) and not request.path.startswith("/api/"):
            return _refusal(request, 400, str(exception.detail))
        return None


class AuditContext:
    """Who and from where, for audit entries written during this request; reset afterwards so
    nothing of one request (a token's name) leaks into the next on the same thread."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = request_context.set(RequestContext(source_ip=request.META.get("REMOTE_ADDR") or None))
        try:
            return self.get_response(request)
        finally:
            request_context.reset(token)


class LoginRequiredForPages(LoginRequiredMiddleware):
    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(_OPEN_PREFIXES):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class NotFoundPages:
    """A page whose `<entity>_get` selector finds nothing (NotFound) answers with the 404 page, as
    the API answers 404 JSON: one way to fetch-or-404 for pages and the API alike."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, NotFound):
            return page_not_found(request, Http404(exception.detail))
        return None


class UserTimezone:
    """Activates the time zone the signed-in person chose (rolloutops/timezones.py); the server's
    until they choose. Probes and static files need none."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = "" if request.path.startswith(_OPEN_PREFIXES) else chosen_zone(request)
        if name:
            timezone.activate(zoneinfo.ZoneInfo(name))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()  # the thread's next request starts from the server's zone
