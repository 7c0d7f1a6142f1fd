"""Admin for agents: read-mostly views; evaluations are recorded through the services (audited)."""
from django.contrib import admin

from .models import Agent, AgentVersion, ChecklistItem, Evaluation, EvaluationResult


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "owner_team", "created_at")
    list_filter = ("owner_team",)
    search_fields = ("slug", "name", "description")


@admin.register(AgentVersion)
class AgentVersionAdmin(admin.ModelAdmin):
    list_display = ("agent", "version", "sla_p95_latency_ms", "sla_max_error_rate", "created_at")
    list_filter = ("agent",)
    search_fields = ("agent__slug", "version")


@admin.register(ChecklistItem)
class ChecklistItemAdmin(admin.ModelAdmin):
    list_display = ("key", "dimension", "title", "position", "active")
    list_filter = ("dimension", "active")
    search_fields = ("key", "title")


class EvaluationResultInline(admin.TabularInline):
    model = EvaluationResult
    extra = 0
    can_delete = False
    readonly_fields = ("item", "status", "evidence")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    # Evaluations are evidence behind the rollout gate: recorded through the audited service, never edited here.
    list_display = ("id", "version", "evaluated_by", "evaluated_at", "expires_at")
    list_filter = ("version__agent",)
    readonly_fields = ("version", "evaluated_by", "evaluated_at", "expires_at", "notes")
    inlines = [EvaluationResultInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
