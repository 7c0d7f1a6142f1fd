"""What every page's layout needs: the navigation a person may open, their roles, and the enums
templates compare against (`{% if r.mode == StageMode.SHADOW %}`, never `'shadow'`)."""
from django.urls import reverse

from agents.models import Dimension, ResultStatus
from agents.readiness import MissingResult, ReadinessStatus
from escalations.models import Priority, Reason, TicketEventKind, TicketStatus
from rolloutops import policy
from rollouts.models import PromotionStatus, RolloutState, StageMode, TransitionAction
from telemetry.models import EventKind, Outcome

from .selectors import Health

# (URL name, label, the action that opens it): a person sees only the entries they may open.
NAVIGATION = [
    ("overview", "Overview", "overview.read"),
    ("agents:list", "Agents", "agent.read"),
    ("rollouts:list", "Rollouts", "rollout.read"),
    ("escalations:queue", "Escalations", "escalation.read"),
    ("rollouts:approvals", "Approvals", "promotion.inbox"),
    ("audit", "Audit", "audit.read"),
]

ENUMS = {e.__name__: e for e in (
    Dimension, EventKind, Health, MissingResult, Outcome, Priority, PromotionStatus, Reason, ReadinessStatus, ResultStatus,
    RolloutState, StageMode, TicketEventKind, TicketStatus, TransitionAction,
)}


def navigation(request):
    user = getattr(request, "user", None)
    path = getattr(request, "path", "")
    items = []
    for url_name, label, action in NAVIGATION:
        if not policy.allows(user, action):
            continue
        href = reverse(url_name)
        active = path == href if href == "/" else path.startswith(href)
        items.append({"href": href, "label": label, "active": active})
    return {"nav_items": items, "user_roles": sorted(policy.user_roles(user))}


def enums(request):
    return ENUMS
