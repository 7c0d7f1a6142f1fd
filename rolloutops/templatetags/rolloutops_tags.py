"""Template tags and filters shared by every page: who may act, percentages, durations, JSON
evidence, times."""
import json
from datetime import timedelta

from django import template
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil

from rolloutops import policy

register = template.Library()


@register.simple_tag(takes_context=True)
def can(context, action, obj=None):
    """`{% can "rollout.rollback" as can_rollback %}`, or `{% can "promotion.decide" p as can_decide %}`
    for an object (four eyes): whether the signed-in person may, by rolloutops/policy.py."""
    request = context.get("request")
    return policy.allows(getattr(request, "user", None), action, obj)


@register.filter
def pct(value, digits=1):
    """0.934 → "93.4 %"; None → "—"."""
    if value is None or value == "":
        return "—"
    try:
        return f"{float(value) * 100:.{int(digits)}f} %"
    except (TypeError, ValueError):
        return "—"


@register.filter
def pretty_json(value):
    return json.dumps(value, cls=DjangoJSONEncoder, indent=2, sort_keys=True, ensure_ascii=False)


@register.filter
def duration(seconds):
    if seconds in (None, ""):
        return "—"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours >= 48:
        return f"{hours // 24} d"
    if hours:
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else f"{seconds} s"


# Past or coming times nearer than this also say how far they are ("· 3 minutes ago").
RELATIVE_WITHIN = timedelta(hours=24)


def _relative(value, now) -> str:
    # Only the largest unit: "3 hours ago", not "3 hours, 12 minutes ago".
    return f"{timesince(value, now, depth=1)} ago" if value <= now else f"in {timeuntil(value, now, depth=1)}"


# The numeric formats the pages use, as plain string formatting: dateformat's dispatch on each
# character was most of a `when`, and a page shows dozens. The same digits (Y is %04d, the others
# %02d); any other format goes through dateformat.
_NUMERIC = {
    "Y-m-d H:i": "{0.year:04d}-{0.month:02d}-{0.day:02d} {0.hour:02d}:{0.minute:02d}",
    "Y-m-d H:i:s": "{0.year:04d}-{0.month:02d}-{0.day:02d} {0.hour:02d}:{0.minute:02d}:{0.second:02d}",
    "Y-m-d": "{0.year:04d}-{0.month:02d}-{0.day:02d}",
    "H:i:s": "{0.hour:02d}:{0.minute:02d}:{0.second:02d}",
    "H:i": "{0.hour:02d}:{0.minute:02d}",
}


def _format(local, fmt: str) -> str:
    pattern = _NUMERIC.get(fmt)
    return pattern.format(local) if pattern else date_format(local, fmt)


def _full(local) -> str:
    return f"{_format(local, 'Y-m-d H:i:s')} {local.tzname()} ({timezone.get_current_timezone_name()})"


@register.simple_tag
def when(value, fmt="Y-m-d H:i", relative="auto"):
    """A time as a <time> element in the person's zone (rolloutops/timezones.py), always with the
    zone's abbreviation: "2026-01-15 14:05 CET · 3 minutes ago" (the relative part within a day;
    relative="no" leaves it out, relative="only" shows it first: "3 minutes ago (14:05 CET)")."""
    if not value:
        return "—"
    local = timezone.localtime(value)
    now = timezone.now()
    absolute = f"{_format(local, fmt)} {local.tzname()}"
    near = abs(now - value) < RELATIVE_WITHIN
    if relative == "only":
        return format_html('<time datetime="{}" title="{}">{} <span class="rel">({})</span></time>',
                           value.isoformat(), _full(local), _relative(value, now), absolute)
    if relative == "auto" and near:
        return format_html('<time datetime="{}" title="{}">{} <span class="rel">· {}</span></time>',
                           value.isoformat(), _full(local), absolute, _relative(value, now))
    return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(), _full(local), absolute)


@register.filter
def clock(value):
    """Just the local clock time with the zone's abbreviation ("14:30 CET"), the date too when it is
    not today: for beside a relative phrase ("due in 12 minutes · 14:30 CET")."""
    if not value:
        return "—"
    local = timezone.localtime(value)
    fmt = "H:i" if local.date() == timezone.localdate() else "Y-m-d H:i"
    return format_html('<time datetime="{}" title="{}">{} {}</time>', value.isoformat(), _full(local),
                       _format(local, fmt), local.tzname())


@register.simple_tag
def now_in_zone():
    return when(timezone.now(), "Y-m-d H:i", relative="no")


@register.filter
def compact_json(value):
    """One-line JSON (the audit log's before/after), not Python's repr."""
    return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
