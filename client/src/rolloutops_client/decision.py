"""One request handled inside a `with` block: routed on entry, timed, recorded on exit."""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .routing import Route

if TYPE_CHECKING:
    from .client import Client, Ticket

logger = logging.getLogger("rolloutops_client")

MAX_STEPS = 200  # the escalation API keeps at most this many attempts


class Decision:
    """Use through `Client.decision(agent, key)`:

        with client.decision("claims-triage", claim.id) as d:
            if d.route.handler == "agent":
                d.step(tool="lookup_policy", arguments={"id": claim.policy}, result=policy)
                d.label, d.confidence = model.decide(claim, policy)
                if d.confidence < 0.6:
                    d.escalate("low_confidence", priority="P2", context={"input": claim.text})

    On exit the decision is recorded (`kind` = the route's handler, `version` = the route's version)
    with its latency, the steps as `trace = {"steps": […]}`, and its outcome: `"error"` when the
    block raised (the exception propagates), `"escalated"` after escalate(), else `d.outcome`
    (default `"ok"`; set `"timeout"` yourself). A decision is recorded when it has a label, or when
    the agent acted and the outcome is not ok (the label is then the outcome's name: the server
    needs one). A human-handled request without a label records nothing: the person's decision is
    reported when it is made (`record(kind="human", …)`, or by resolving the escalation ticket).

    Shadow: when `d.route.shadow` is true the incumbent acts and `d.route.shadow_version` should
    decide the same request beside it, without its answer being used. Report that decision with
    `d.record_shadow(label=…, …)` — a second `record(kind="agent", version=shadow_version, …)`.
    """

    def __init__(self, client: Client, agent: str, key: str, *, segment: str | None = None,
                 input_hash: str | None = None):
        self.client = client
        self.agent = agent
        self.key = key
        self.route: Route = client.route(agent, key)
        self.label: str | None = None
        self.confidence: float | None = None
        self.segment = segment
        self.input_hash = input_hash
        self.outcome = "ok"
        self.steps: list[dict[str, Any]] = []
        self.latency_ms: float | None = None
        self.recorded = False
        self._started = 0.0

    def __enter__(self) -> Decision:
        self._started = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.latency_ms = (time.perf_counter() - self._started) * 1000
        outcome = "error" if exc_type is not None else self.outcome
        label = self.label
        if not label and (self.route.handler != "agent" or outcome == "ok"):
            if self.route.handler == "agent":
                logger.warning("decision %s/%s ended without a label: nothing recorded", self.agent, self.key)
            return None
        try:
            self.recorded = self.client.record(
                agent=self.agent, request_key=self.key, kind=self.route.handler, label=label or outcome,
                outcome=outcome, version=self.route.version, latency_ms=round(self.latency_ms, 3),
                segment=self.segment, confidence=self.confidence, input_hash=self.input_hash, trace=self.trace,
            )
        except ValueError:
            # A bad outcome set by the caller must not replace the block's own exception.
            logger.exception("decision %s/%s could not be recorded", self.agent, self.key)
        return None  # never swallow the block's exception

    @property
    def trace(self) -> dict[str, Any] | None:
        return {"steps": list(self.steps)} if self.steps else None

    def step(self, tool: str, *, arguments: Any = None, result: Any = None, error: Any = None,
             duration_ms: float | None = None, **extra: Any) -> None:
        """One tool call or step the agent took, in order. Kept for the recorded trace and for the
        attempts an escalation shows the reviewer."""
        if len(self.steps) >= MAX_STEPS:
            return
        item: dict[str, Any] = {"tool": str(tool)[:200] or "step"}
        for name, value in (("arguments", arguments), ("result", result), ("error", error),
                            ("duration_ms", duration_ms)):
            if value is not None:
                item[name] = value if name != "error" or not isinstance(value, BaseException) else repr(value)
        item.update(extra)
        self.steps.append(item)

    def escalate(self, reason: str, *, priority: str = "P3", context: Mapping[str, Any] | None = None) -> Ticket:
        """Hand this request to a person: opens the ticket now (synchronously) with the steps so far
        as its attempts, and marks the decision's outcome `"escalated"`. `context` adds `input`,
        `partial_output` and anything else, and wins over what is filled in here."""
        full: dict[str, Any] = {"attempts": list(self.steps)}
        if self.confidence is not None:
            full["confidence"] = self.confidence
        if self.segment:
            full["segment"] = self.segment
        if self.label:
            full["partial_output"] = self.label
        full.update(context or {})
        self.outcome = "escalated"
        return self.client.escalate(agent=self.agent, request_key=self.key, reason=reason, priority=priority,
                                    context=full, version=self.route.version)

    def record_shadow(self, *, label: str, confidence: float | None = None, latency_ms: float | None = None,
                      outcome: str = "ok", trace: Any = None) -> bool:
        """Report the shadow candidate's decision on this request (it was not acted on). Raises
        ValueError when the route has no shadow candidate."""
        if not self.route.shadow or not self.route.shadow_version:
            raise ValueError(f"request {self.key!r} of {self.agent!r} is not routed with a shadow candidate")
        return self.client.record(
            agent=self.agent, request_key=self.key, kind="agent", label=label, outcome=outcome,
            version=self.route.shadow_version, latency_ms=latency_ms, segment=self.segment, confidence=confidence,
            input_hash=self.input_hash, trace=trace,
        )
