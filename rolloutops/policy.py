"""Who may do what: the roles of people and one table of actions → roles and token scopes.

Pages (`rolloutops.pages.require_action`), API endpoints (`rolloutops.auth.authorize`), services
(`check`), templates (`{% can %}`) and the navigation all read `POLICY`; nothing else decides who
may act. "Who can roll back?" is answered by reading the table; a new role is a `Role` member and
its rows here (the group is created on the next `migrate`). See docs/architecture.md, "Who may do
what".
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import models

from .exceptions import Forbidden


class Role(models.TextChoices):
    """Roles of people, kept as Django groups of the same name."""

    OPERATOR = "operator", "Operator"
    REVIEWER = "reviewer", "Reviewer"
    MANAGER = "manager", "Manager"


class Scope(models.TextChoices):
    """What an API token may be used for. `user` acts as the owner, within the owner's roles; the
    others are machine scopes that admit one kind of call each."""

    ROUTE_READ = "route:read", "route:read — ask where a request goes"
    EVENTS_WRITE = "events:write", "events:write — report decisions and outcomes"
    ESCALATIONS_WRITE = "escalations:write", "escalations:write — open escalation tickets"
    METRICS_READ = "metrics:read", "metrics:read — scrape /metrics"
    USER = "user", "user — act as the owner, within the owner's role"


ALL_ROLES = frozenset(Role.values)
OPERATOR = frozenset({Role.OPERATOR})
REVIEWER = frozenset({Role.REVIEWER})
MANAGER = frozenset({Role.MANAGER})
PEOPLE = frozenset({Scope.USER})  # calls a person makes: only a `user` token acts for them


@dataclass(frozen=True)
class Rule:
    """`roles`: a person needs one of them. `scopes`: a token needs one of them, and its owner the
    role (a token never does more than both allow). `condition(user, obj)` refuses a particular
    object even to the right role (four eyes); it returns the refusal, or None."""

    roles: frozenset[str]
    what: str  # completes "only a person with the … role may …"
    scopes: frozenset[str] = PEOPLE
    condition: Callable[[object, object], Forbidden | None] | None = None


def _four_eyes(user, promotion) -> Forbidden | None:
    # docs/architecture.md: the approver of a promotion is never its requester, whatever their roles.
    if promotion.requested_by_id is not None and promotion.requested_by_id == user.pk:
        return Forbidden("four eyes: the approver is never the requester")
    return None


def _requester_only(user, promotion) -> Forbidden | None:
    if promotion.requested_by_id != user.pk:
        return Forbidden("only the requester withdraws a pending request")
    return None


def _holder_or_manager(user, ticket) -> Forbidden | None:
    if ticket.claimed_by_id == user.pk or allows(user, "escalation.release_any"):
        return None
    holder = ticket.claimed_by.get_username() if ticket.claimed_by_id else None
    return Forbidden(f"only {holder}, who holds the claim, or a manager may release it", claimed_by=holder)


POLICY: dict[str, Rule] = {
    # Reading: every role sees agents, rollouts and their figures.
    "overview.read": Rule(ALL_ROLES, "see the overview"),
    "agent.read": Rule(ALL_ROLES, "see agents, versions and readiness"),
    "rollout.read": Rule(ALL_ROLES, "see rollouts, their guardrails and shadow comparison"),
    "promotion.read": Rule(ALL_ROLES, "see a promotion request"),
    "promotion.inbox": Rule(OPERATOR | MANAGER, "see the promotion requests waiting for a decision"),
    "escalation.read": Rule(REVIEWER | MANAGER, "see the escalation queue and tickets"),
    "audit.read": Rule(OPERATOR | MANAGER, "read the audit log"),
    "metrics.read": Rule(ALL_ROLES, "scrape /metrics", scopes=frozenset({Scope.METRICS_READ, Scope.USER})),
    # Agents and readiness.
    "agent.register": Rule(OPERATOR, "register agents"),
    "version.add": Rule(OPERATOR, "add versions"),
    "evaluation.record": Rule(OPERATOR, "record readiness evaluations"),
    "checklist.add": Rule(OPERATOR, "extend the readiness checklist"),
    # Rollouts.
    "rollout.start": Rule(OPERATOR, "start rollouts"),
    "rollout.plan": Rule(OPERATOR, "edit a rollout's plan"),
    "rollout.pause": Rule(OPERATOR, "pause rollouts"),
    "rollout.resume": Rule(OPERATOR, "resume rollouts"),
    "rollout.rollback": Rule(OPERATOR, "roll rollouts back"),
    "rollout.complete": Rule(OPERATOR, "complete rollouts"),
    "production.revert": Rule(OPERATOR, "revert production to the previous incumbent"),
    "promotion.request": Rule(OPERATOR, "request promotions"),
    "promotion.decide": Rule(MANAGER, "approve or reject promotions", condition=_four_eyes),
    "promotion.cancel": Rule(OPERATOR | MANAGER, "withdraw a promotion request", condition=_requester_only),
    # Machines: an agent runtime's token, owned by an operator (or a `user` token of one).
    "route.read": Rule(OPERATOR, "ask where a request goes", scopes=frozenset({Scope.ROUTE_READ, Scope.USER})),
    "events.write": Rule(OPERATOR, "report events", scopes=frozenset({Scope.EVENTS_WRITE, Scope.USER})),
    "escalation.open": Rule(OPERATOR, "open escalation tickets",
                            scopes=frozenset({Scope.ESCALATIONS_WRITE, Scope.USER})),
    # The escalation queue.
    "escalation.work": Rule(REVIEWER, "claim, renew and resolve escalation tickets"),
    "escalation.release": Rule(REVIEWER | MANAGER, "release a claim", condition=_holder_or_manager),
    "escalation.release_any": Rule(MANAGER, "release someone else's claim"),
}


def rule(action: str) -> Rule:
    try:
        return POLICY[action]
    except KeyError:
        # A typo must never read as "nobody may" or "anybody may": it is a programming error.
        raise LookupError(f"no action {action!r} in rolloutops.policy.POLICY") from None


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


def refusal(user, action: str, obj=None) -> Forbidden | None:
    """Why `user` may not do `action` (to `obj`, when given), or None when they may."""
    r = rule(action)
    if not user_roles(user) & r.roles:
        return Forbidden(f"only a person with the {' or '.join(sorted(r.roles))} role may {r.what}")
    if obj is not None and r.condition is not None:
        return r.condition(user, obj)
    return None


def allows(user, action: str, obj=None) -> bool:
    return refusal(user, action, obj) is None


def check(actor, action: str, obj=None) -> None:
    """For services: raise Forbidden unless `actor` may. `actor=None` is the system itself (the
    guardrail watch, the sweeps, the demo seed, management commands), never a person."""
    if actor is None:
        return
    refused = refusal(actor, action, obj)
    if refused is not None:
        raise refused


def roles_for(action: str) -> list[str]:
    return sorted(rule(action).roles)
