"""Template tags and filters shared by every page: who may act, percentages, durations, JSON
evidence, times."""
import json

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


@register.simple_tag
def when(value, fmt="Y-m-d H:i"):
    """A <time> element: relative text, absolute local time in the tooltip, ISO in datetime."""
    if not value:
        return "—"
    local = timezone.localtime(value)
    now = timezone.now()
    # Only the largest unit: "3 hours ago", not "3 hours, 12 minutes ago".
    relative = (f"{timesince(value, now).split(',')[0]} ago" if value <= now
                else f"in {timeuntil(value, now).split(',')[0]}")
    return format_html('<time datetime="{}" title="{} ({})">{}</time>',
                       value.isoformat(), date_format(local, fmt), local.tzname(), relative)


@register.filter
def compact_json(value):
    """One-line JSON (the audit log's before/after), not Python's repr."""
    return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
