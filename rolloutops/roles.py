"""The three roles of people (SPEC: operator, reviewer, manager), kept as Django groups."""
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.db import models


class Role(models.TextChoices):
    OPERATOR = "operator", "Operator"
    REVIEWER = "reviewer", "Reviewer"
    MANAGER = "manager", "Manager"


ALL_ROLES = frozenset(Role.values)


def user_roles(user) -> frozenset[str]:
    """Roles of a user; a superuser holds every role (four eyes still apply to them)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return ALL_ROLES
    cached = getattr(user, "_rolloutops_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        user._rolloutops_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def role_required(*roles: str):
    """View decorator: 403 for a signed-in user without one of `roles` (the login middleware
    has already sent anonymous people to the login page)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not has_role(request.user, *roles):
                raise PermissionDenied(f"This page needs the {' or '.join(roles)} role.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
