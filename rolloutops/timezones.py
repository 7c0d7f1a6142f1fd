"""Which time zone a person sees: their own choice (Profile.time_zone), else the server's
(settings.TIME_ZONE) while their browser's is proposed. Every time a page shows is in that zone,
with its abbreviation (rolloutops_tags.when), and the footer names it."""
from __future__ import annotations

import zoneinfo
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .audit import audit_record
from .exceptions import Invalid
from .models import Profile

# The person's zone, kept in their session so pages need no query for it: "" = not chosen yet.
SESSION_KEY = "_rolloutops_tz"


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone_groups() -> list[tuple[str, list[str]]]:
    """Every zone for a <select>, grouped by area ("Europe": ["Europe/Amsterdam", …]), UTC first."""
    groups: dict[str, list[str]] = {}
    for name in sorted(zone_names()):
        if "/" not in name or name.startswith(("Etc/", "SystemV/", "US/", "posix/", "right/")):
            continue  # aliases and legacy names; every real place has an Area/City name
        groups.setdefault(name.split("/", 1)[0], []).append(name)
    return [("", ["UTC"])] + sorted(groups.items())


def valid(name: str) -> bool:
    return name in zone_names()


def time_zone_of(user) -> str:
    """The zone `user` chose, or "" when they have not chosen yet."""
    return Profile.objects.filter(user_id=user.pk).values_list("time_zone", flat=True).first() or ""


def time_zone_set(*, user, time_zone: str) -> Profile:
    """A person chooses the zone their pages show times in."""
    time_zone = (time_zone or "").strip()
    if not valid(time_zone):
        raise Invalid(f"{time_zone!r} is not a time zone: choose one such as Europe/Berlin or UTC", field="time_zone")
    with transaction.atomic():
        profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
        before = profile.time_zone
        if before != time_zone:
            profile.time_zone = time_zone
            profile.updated_at = timezone.now()
            profile.save(update_fields=["time_zone", "updated_at"])
            audit_record(actor=user, action="profile.time_zone_set", object_type="auth.user", object_id=user.pk,
                         object_repr=user.get_username(), before={"time_zone": before or None},
                         after={"time_zone": time_zone})
    return profile


def remember(request, name: str) -> None:
    """After a change, this session shows the new zone at once (other sessions on their next sign-in)."""
    request.session[SESSION_KEY] = name


def chosen_zone(request) -> str:
    """The signed-in person's zone from their session, read from the database once per session."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    name = request.session.get(SESSION_KEY)
    if name is None:
        name = time_zone_of(user)
        request.session[SESSION_KEY] = name
    return name if valid(name) else ""


def time_zone(request) -> dict:
    """Context processor: the zone pages show times in (the footer says which), and whether to
    propose the browser's zone (the person has not chosen one yet)."""
    now = timezone.localtime()
    chosen = chosen_zone(request)
    user = getattr(request, "user", None)
    return {
        "tz": {"name": timezone.get_current_timezone_name(), "abbreviation": now.tzname(), "chosen": bool(chosen)},
        "tz_proposal": bool(user is not None and user.is_authenticated and not chosen),
        "server_time_zone": settings.TIME_ZONE,
    }
