"""Request-wide rules: pages need a signed-in person; a missing object is the 404 page; times shown
in the person's timezone; audit entries know who and from where."""
import zoneinfo

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import Http404
from django.utils import timezone
from django.views.defaults import page_not_found

from .audit import RequestContext, request_context
from .exceptions import NotFound
from .timezones import chosen_zone

# The API answers 401 itself (JSON, bearer tokens); health and metrics are for probes.
_OPEN_PREFIXES = ("/api/", "/static/", "/healthz", "/readyz", "/metrics")


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
