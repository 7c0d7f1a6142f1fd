"""Reads of the cross-app records: the audit trail with its filters."""
from .inputs import day_end, day_start, query_date
from .models import AuditEntry


def audit_entries(*, action: str = "", actor: str = "", object_type: str = "", object_id: str = "",
                  since: str = "", until: str = "", q: str = ""):
    """The audit trail, newest first, filtered; `since`/`until` are days (YYYY-MM-DD) in the
    current time zone, inclusive."""
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
    # A day that does not exist (2026-02-30) is Invalid: 422 on the API, the 400 page on a page.
    if day := query_date(since, field="since"):
        qs = qs.filter(at__gte=day_start(day))
    if day := query_date(until, field="until"):
        qs = qs.filter(at__lte=day_end(day))
    return qs.order_by("-id")


def audit_filter_choices() -> dict:
    return {
        "actions": list(AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct()),
        "object_types": list(
            AuditEntry.objects.exclude(object_type="").order_by("object_type").values_list("object_type", flat=True).distinct()
        ),
    }

