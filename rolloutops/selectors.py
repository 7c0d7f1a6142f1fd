"""Reads of the cross-app records: the audit trail with its filters."""
from datetime import datetime, time

from django.utils import timezone
from django.utils.dateparse import parse_date

from .models import AuditEntry


def audit_entries(*, action: str = "", actor: str = "", object_type: str = "", object_id: str = "",
                  since: str = "", until: str = "", q: str = ""):
    qs = AuditEntry.objects.all()
    if action:
        qs = qs.filter(action__startswith=action)
    if actor:
        qs = qs.filter(actor_label__icontains=actor)
    if object_type:
        qs = qs.filter(object_type=object_type)
    if object_id:
        qs = qs.filter(object_id=str(object_id))
    if q:
        qs = qs.filter(object_repr__icontains=q)
    tz = timezone.get_current_timezone()
    if since and (day := parse_date(since)):
        qs = qs.filter(at__gte=timezone.make_aware(datetime.combine(day, time.min), tz))
    if until and (day := parse_date(until)):
        qs = qs.filter(at__lte=timezone.make_aware(datetime.combine(day, time.max), tz))
    return qs.order_by("-id")


def audit_filter_choices() -> dict:
    return {
        "actions": list(AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct()),
        "object_types": list(
            AuditEntry.objects.exclude(object_type="").order_by("object_type").values_list("object_type", flat=True).distinct()
        ),
    }

