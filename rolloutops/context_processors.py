"""What every page's layout needs: the navigation and the signed-in person's roles."""
from django.urls import NoReverseMatch, reverse

from .roles import user_roles

NAVIGATION = [
    ("overview", "Overview"),
    ("agents:list", "Agents"),
    ("rollouts:list", "Rollouts"),
    ("escalations:queue", "Escalations"),
    ("rollouts:approvals", "Approvals"),
    ("audit", "Audit"),
]


def navigation(request):
    path = getattr(request, "path", "")
    items = []
    for url_name, label in NAVIGATION:
        try:
            href = reverse(url_name)
        except NoReverseMatch:
            continue
        active = path == href if href == "/" else path.startswith(href)
        items.append({"href": href, "label": label, "active": active})
    return {"nav_items": items, "user_roles": sorted(user_roles(getattr(request, "user", None)))}
