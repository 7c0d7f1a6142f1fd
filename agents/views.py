"""Pages of the agents app: the list, an agent, and a version's readiness matrix with its evaluation form."""
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from rolloutops.exceptions import DomainError
from rolloutops.pages import error_text, htmx_partial, paginate, require_action

from . import selectors, services
from .readiness import version_readiness

LIST_FILTERS = ("q", "team", "readiness")


@require_GET
@require_action("agent.read")
def agent_list(request):
    filters = {key: request.GET.get(key, "").strip() for key in LIST_FILTERS}
    if filters["readiness"] not in selectors.READINESS_FILTERS:
        filters["readiness"] = ""
    page = paginate(request, selectors.agent_rows(**filters), per_page=25)
    context = {"page": page, "filters": filters, "teams": selectors.owner_teams()}
    template = "agents/agent_list.html#agent-table" if htmx_partial(request) else "agents/agent_list.html"
    return render(request, template, context)


@require_POST
@require_action("agent.register")
def agent_create(request):
    try:
        agent = services.agent_register(
            actor=request.user, slug=request.POST.get("slug", ""), name=request.POST.get("name", ""),
            owner_team=request.POST.get("owner_team", ""), description=request.POST.get("description", ""),
        )
    except DomainError as exc:
        messages.error(request, f"Agent not registered: {error_text(exc)}")
        return redirect("agents:list")
    messages.success(request, f"Registered {agent.slug}.")
    return redirect("agents:detail", slug=agent.slug)


@require_GET
@require_action("agent.read")
def agent_detail(request, slug):
    agent = selectors.agent_get(slug=slug)
    versions = [(v, version_readiness(version=v)) for v in selectors.agent_versions(agent=agent)]
    context = {
        "agent": agent, "versions": versions, "open_rollout": selectors.open_rollout(agent=agent),
        "rollouts": selectors.agent_rollouts(agent=agent),
        "lineage": selectors.production_lineage(agent=agent),
    }
    return render(request, "agents/agent_detail.html", context)


@require_POST
@require_action("version.add")
def version_create(request, slug):
    agent = selectors.agent_get(slug=slug)
    try:
        version = services.version_add(
            actor=request.user, agent=agent, version=request.POST.get("version", ""),
            notes=request.POST.get("notes", ""),
            sla_p95_latency_ms=int(request.POST.get("sla_p95_latency_ms") or 2000),
            sla_max_error_rate=float(request.POST.get("sla_max_error_rate") or 0.02),
        )
    except ValueError:
        messages.error(request, "Version not added: the SLA must be numbers.")
        return redirect("agents:detail", slug=slug)
    except DomainError as exc:
        messages.error(request, f"Version not added: {error_text(exc)}")
        return redirect("agents:detail", slug=slug)
    messages.success(request, f"Added version {version.version}.")
    return redirect("agents:version", slug=slug, version=version.version)


def _matrix_context(version, **extra) -> dict:
    return {"agent": version.agent, "version": version, "readiness": version_readiness(version=version),
            "grace_days": settings.ROLLOUTOPS["CHECKLIST_GRACE_DAYS"], **extra}


@require_GET
@require_action("agent.read")
def version_detail(request, slug, version):
    row = selectors.version_get(agent=selectors.agent_get(slug=slug), version=version)
    context = _matrix_context(row, open_rollout=selectors.open_rollout(agent=row.agent))
    template = "agents/version_detail.html#matrix" if htmx_partial(request) else "agents/version_detail.html"
    return render(request, template, context)


def _results_from_form(post) -> list[dict]:
    """One result per item whose radio was set; "—" (empty) leaves the item as it was."""
    results = []
    for name, status in post.items():
        if name.startswith("status:") and status:
            key = name.removeprefix("status:")
            results.append({"item": key, "status": status, "evidence": post.get(f"evidence:{key}", "")})
    return results


@require_POST
@require_action("evaluation.record")
def evaluation_create(request, slug, version):
    row = selectors.version_get(agent=selectors.agent_get(slug=slug), version=version)
    results = _results_from_form(request.POST)
    error = notice = ""
    if not results:
        error = "Nothing recorded: choose pass, fail or n/a for at least one item."
    else:
        try:
            evaluation = services.evaluation_record(actor=request.user, version=row, results=results,
                                                    notes=request.POST.get("notes", ""))
            notice = f"Recorded evaluation #{evaluation.pk} ({len(results)} items)."
        except DomainError as exc:
            error = f"Nothing recorded: {error_text(exc)}"
    if htmx_partial(request):
        context = _matrix_context(row, form_error=error, form_notice=notice)
        # 200 even on error: htmx does not swap 4xx answers, and the form must show why.
        return render(request, "agents/version_detail.html#matrix", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return redirect("agents:version", slug=slug, version=row.version)


@require_POST
@require_action("checklist.add")
def checklist_item_create(request, slug, version):
    row = selectors.version_get(agent=selectors.agent_get(slug=slug), version=version)
    try:
        item = services.checklist_item_add(
            actor=request.user, dimension=request.POST.get("dimension", ""), key=request.POST.get("key", ""),
            title=request.POST.get("title", ""), description=request.POST.get("description", ""),
        )
        if item.grace_until:
            day = timezone.localtime(item.grace_until).strftime("%Y-%m-%d %H:%M")
            messages.success(request, f"Added checklist item {item.key}. It applies to evaluations recorded from now "
                                      f"on; versions last evaluated before it need it from {day}.")
        else:
            messages.success(request, f"Added checklist item {item.key}; every version now needs it evaluated.")
    except DomainError as exc:
        messages.error(request, f"Item not added: {error_text(exc)}")
    return redirect("agents:version", slug=slug, version=row.version)
