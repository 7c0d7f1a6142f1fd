"""Small shared pieces for page views."""
from django.core.paginator import Paginator


def htmx_partial(request) -> bool:
    """Render only the #partial for htmx swaps; boosted navigation gets the whole page."""
    return bool(getattr(request, "htmx", False)) and not request.htmx.boosted


def paginate(request, queryset, per_page: int = 50):
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))

