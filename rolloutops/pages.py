"""What every page view shares: the policy decorator, partial rendering, pagination, one line per
domain error, the live regions' refresh intervals."""
from functools import wraps

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator

from . import policy
from .exceptions import DomainError
from .inputs import page_number


def page_allows(request, action: str) -> None:
    """403 for a signed-in person the policy does not allow `action` (the login middleware has
    already sent anonymous people to the login page). For a view whose action is in its URL."""
    if not policy.allows(request.user, action):
        raise PermissionDenied(f"This page needs the {' or '.join(policy.roles_for(action))} role.")


def require_action(action: str):
    """View decorator: `page_allows(request, action)` before the view runs."""
    policy.rule(action)  # an unknown action fails at import, not on the first request

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            page_allows(request, action)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def htmx_partial(request) -> bool:
    """Render only the #partial for htmx swaps; boosted navigation gets the whole page."""
    return bool(getattr(request, "htmx", False)) and not request.htmx.boosted


def paginate(request, queryset, per_page: int = 50):
    """The `?page=` of a list; a page past the end is the last one, a number no database could
    offset to is clamped first (rolloutops/inputs.py)."""
    return Paginator(queryset, per_page).get_page(page_number(request.GET.get("page")))


def error_text(exc: DomainError) -> str:
    """A domain error as one line for a page message (a plan error may list several problems)."""
    return exc.detail if isinstance(exc.detail, str) else "; ".join(map(str, exc.detail))


def refresh(request) -> dict:
    """Context processor: how often each page's live regions poll (settings.ROLLOUTOPS["REFRESH_SECONDS"])."""
    return {"refresh": settings.ROLLOUTOPS["REFRESH_SECONDS"]}
