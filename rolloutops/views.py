"""Pages of the core: the audit log (with CSV export), health, and the 403 page."""
import csv
import json

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from .pages import htmx_partial, paginate, require_action
from .selectors import audit_entries, audit_filter_choices

AUDIT_FILTERS = ("action", "actor", "object_type", "object_id", "since", "until", "q")


def _audit_filters(request) -> dict:
    return {key: request.GET.get(key, "").strip() for key in AUDIT_FILTERS}


@require_GET
@require_action("audit.read")
def audit_log(request):
    filters = _audit_filters(request)
    page = paginate(request, audit_entries(**filters), per_page=50)
    context = {"page": page, "filters": filters, **audit_filter_choices()}
    template = "audit.html#audit-table" if htmx_partial(request) else "audit.html"
    return render(request, template, context)


def _json(value) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


class _Echo:
    def write(self, value):
        return value


@require_GET
@require_action("audit.read")
def audit_export(request):
    rows = audit_entries(**_audit_filters(request)).iterator(chunk_size=2000)
    writer = csv.writer(_Echo())
    header = ["id", "at", "actor", "action", "object_type", "object_id", "object", "before", "after", "source_ip", "hash"]

    def lines():
        yield writer.writerow(header)
        for e in rows:
            yield writer.writerow([e.pk, e.at.isoformat(), e.actor_label, e.action, e.object_type, e.object_id,
                                   e.object_repr, _json(e.before), _json(e.after), e.source_ip or "", e.hash])

    response = StreamingHttpResponse(lines(), content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="rolloutops-audit-{stamp}.csv"'
    return response


@login_not_required
@require_GET
def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def forbidden(request, exception=None):
    return render(request, "403.html", {"message": str(exception) if exception else ""}, status=403)
