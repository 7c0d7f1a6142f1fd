"""What the schemathesis passes share (tests/core/test_api_fuzz.py in the suite, scripts/fuzz for the
long run of docs/hardening.md): a small world to aim at, one token per role, and the call that
sends a generated case and sorts its answer.

Generated path parameters are mostly random, so most would only ever meet a 404; a share of the
cases is pointed at objects that exist (an agent with an open rollout of an older version, its
versions, tickets, a promotion) so that the endpoints' own code runs on hostile input too."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import hypothesis
import schemathesis
from django.utils import timezone
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from agents.models import ChecklistItem
from agents.services import agent_register, evaluation_record, version_add
from escalations.services import ticket_claim, ticket_open
from rolloutops.tokens import token_issue
from rolloutops.exceptions import DomainError
from rollouts.models import PromotionRequest, Rollout
from rollouts.promotions import promotion_request
from rollouts.services import rollout_start
from telemetry.services import events_ingest
from tests.factories import UserFactory

ROLES = ("operator", "reviewer")

# The checks of a generated case: never a 5xx; only statuses the OpenAPI document lists; the
# declared content type. (Response bodies are pinned by each endpoint's own tests.)
STATUS_CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance)


@dataclass
class World:
    tokens: dict[str, str]
    # Path parameter name -> values that exist.
    known: dict[str, list] = field(default_factory=dict)


def seed_world(*, suffix: str = "") -> World:
    """Two people (an operator, a reviewer) with a token each, and objects for every kind of path
    parameter. Everything through the services, as a user would have made it."""
    operator = UserFactory(username=f"fuzz-operator{suffix}", roles=["operator"])
    reviewer = UserFactory(username=f"fuzz-reviewer{suffix}", roles=["reviewer"])
    agent = agent_register(actor=operator, slug=f"fuzz-agent{suffix}", name="Fuzz target", owner_team="fuzz")
    old = version_add(actor=operator, agent=agent, version="1.0.0")
    new = version_add(actor=operator, agent=agent, version="2.0.0")
    evaluation_record(actor=operator, version=old, results=[
        {"item": key, "status": "pass", "evidence": "seeded"}
        for key in ChecklistItem.objects.filter(active=True).values_list("key", flat=True)
    ])
    # The open rollout is of the older version (issue 11, finding 5).
    rollout = rollout_start(actor=operator, version=old)
    events_ingest(actor=operator, events=[
        {"agent": agent.slug, "request_key": f"fuzz-{i}", "kind": kind, "label": "approve", "outcome": "ok",
         "latency_ms": 100, "occurred_at": (timezone.now() - timedelta(minutes=5)).isoformat()}
        for i in range(5) for kind in ("agent", "human")
    ])
    tickets = []
    for i, priority in enumerate(("P1", "P2", "P3")):
        ticket, _ = ticket_open(actor=operator, agent=agent, request_key=f"ticket-{i}", reason="low_confidence",
                                priority=priority, context={"input": {"claim": i}, "attempts": [{"tool": "lookup"}]})
        tickets.append(ticket)
    ticket_claim(reviewer=reviewer, ticket=tickets[0])
    try:
        promotion_request(actor=operator, rollout=rollout, reason="fuzz")
    except DomainError:
        pass  # refused by its gates, and kept as such
    tokens = {}
    for role, person in (("operator", operator), ("reviewer", reviewer)):
        _, raw = token_issue(user=person, scopes="user", name=f"fuzz-{role}{suffix}")
        tokens[role] = raw
    known = {
        "slug": [agent.slug],
        "version": [old.version, new.version],
        "rollout_id": list(Rollout.objects.filter(agent=agent).values_list("pk", flat=True)) or [rollout.pk],
        "ticket_id": [t.pk for t in tickets],
        "promotion_id": list(PromotionRequest.objects.filter(rollout__agent=agent).values_list("pk", flat=True)),
    }
    return World(tokens=tokens, known=known)


@dataclass
class Tally:
    """What one role's pass saw: cases sent, their statuses, and the first failure per operation."""

    cases: int = 0
    server_errors: int = 0
    nonconforming: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"cases": self.cases, "5xx": self.server_errors, "nonconforming": self.nonconforming,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())}}


def load_schema(app) -> BaseSchema:
    """The OpenAPI document as the API serves it, with calls going to `app` (WSGI, in-process)."""
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def _strategy(operation, world: World, mode: GenerationMode):
    generated = operation.as_strategy(generation_mode=mode)
    names = re.findall(r"{(\w+)}", operation.path)
    if not names or not all(world.known.get(name) for name in names):
        return generated
    existing = st.fixed_dictionaries({name: st.sampled_from(world.known[name]) for name in names})
    aimed = existing.flatmap(lambda params: operation.as_strategy(generation_mode=mode, path_parameters=params))
    return st.one_of(generated, aimed)


def fuzz_operation(operation, *, world: World, role: str, tally: Tally, max_examples: int, seed_value: int,
                   modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE), limit: int | None = None) -> None:
    """Send `max_examples` generated cases per mode (fewer when the operation has fewer distinct
    ones) as `role`, none once the tally reaches `limit`; count them and keep the first failure of
    each kind for the operation."""
    headers = {"Authorization": f"Bearer {world.tokens[role]}"}
    checks = list(STATUS_CHECKS)
    for mode in modes:
        @hypothesis.seed(seed_value)
        @hypothesis.settings(max_examples=max_examples, database=None, deadline=None, derandomize=False,
                             phases=[hypothesis.Phase.generate], suppress_health_check=list(hypothesis.HealthCheck),
                             verbosity=hypothesis.Verbosity.quiet)
        @hypothesis.given(case=_strategy(operation, world, mode))
        def run(case):
            if limit is not None and tally.cases >= limit:
                return
            response = case.call(headers=headers)
            tally.cases += 1
            tally.statuses[response.status_code] += 1
            if response.status_code >= 500:
                tally.server_errors += 1
            try:
                case.validate_response(response, checks=checks, headers=headers)
            except (Failure, FailureGroup) as exc:
                if response.status_code < 500:
                    tally.nonconforming += 1
                key = f"{operation.label} [{response.status_code}]"
                if key not in tally.failures:
                    body = response.content[:300] if hasattr(response, "content") else b""
                    tally.failures[key] = (f"{case.as_curl_command(headers=headers)}\n  -> {response.status_code} "
                                           f"{body!r}\n  {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")

        run()


def fuzz_role(schema: BaseSchema, *, world: World, role: str, max_examples: int, seed_value: int = 0,
              tally: Tally | None = None, limit: int | None = None) -> Tally:
    """One pass over every operation of the document as `role`, into `tally`."""
    tally = tally or Tally()
    for result in schema.get_all_operations():
        fuzz_operation(result.ok(), world=world, role=role, tally=tally, max_examples=max_examples,
                       seed_value=seed_value, limit=limit)
    return tally
