"""Request-wide rules: pages need a signed-in person; times shown in the person's timezone."""
import zoneinfo

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.utils import timezone

from .audit import RequestContext, request_context

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


class UserTimezone:
    """Activates the timezone the browser reported (cookie `tz`, set by static/js/app.js)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = request.COOKIES.get("tz")
        try:
            timezone.activate(zoneinfo.ZoneInfo(name)) if name else timezone.deactivate()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        return self.get_response(request)
