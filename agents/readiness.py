"""The readiness gate: one function answers "is this version ready?" with every reason why not
(docs/architecture.md, "Where each rule lives").

Manual results come from the checklist evaluations of this app. Automatic checks come from the
apps that hold the data — the version's own events (telemetry) and its escalation tickets
(escalations) — which register them at start-up, so this lower layer imports neither."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import models
from django.utils import timezone

from .models import AgentVersion, ChecklistItem, Dimension, Evaluation, EvaluationResult, ResultStatus

# Lists (overview, agents) reuse automatic figures this long; gates and the matrix compute fresh.
AUTOMATIC_CACHE_SECONDS = 60
# An evaluation this close to its expiry is marked on the pages so it can be renewed in time.
EXPIRING_SOON = timedelta(days=14)

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"


class MissingResult(models.TextChoices):
    """Why a checklist item has no result that counts; otherwise its status is a ResultStatus.
    GRACE: an item added after the version's last evaluation, so not evaluated yet, within its
    grace period (agents/models.py, ChecklistItem): it does not block until `grace_until`."""

    NOT_EVALUATED = "not_evaluated", "Not evaluated"
    EXPIRED = "expired", "Expired"
    GRACE = "grace", "New item, in its grace period"


class ReadinessStatus(models.TextChoices):
    """A version's badge on lists, and the agents list's filter."""

    READY = "ready", "ready"
    NOT_READY = "not-ready", "not ready"
    NO_VERSION = "no-version", "no version yet"


@dataclass(frozen=True)
class ItemVerdict:
    """A checklist item as it stands for one version: its latest result, or why it has none."""

    key: str
    title: str
    dimension: str
    status: str  # pass | fail | na | not_evaluated | expired | grace
    ok: bool
    reason: str = ""  # the failing line, empty when ok
    evidence: str = ""
    evaluation_id: int | None = None
    evaluated_by: str = ""
    evaluated_at: datetime | None = None
    expires_at: datetime | None = None
    expiring_soon: bool = False
    grace_until: datetime | None = None  # set while the item is in its grace period for this version

    @property
    def in_grace(self) -> bool:
        return self.status == MissingResult.GRACE

    @property
    def evidence_is_link(self) -> bool:
        return self.evidence.startswith(("http://", "https://"))

    def as_dict(self) -> dict:
        return {
            "key": self.key, "title": self.title, "status": self.status, "ok": self.ok, "reason": self.reason,
            "evidence": self.evidence, "evaluation": self.evaluation_id, "evaluated_by": self.evaluated_by or None,
            "evaluated_at": _iso(self.evaluated_at), "expires_at": _iso(self.expires_at),
            "expiring_soon": self.expiring_soon, "grace_until": _iso(self.grace_until),
        }


@dataclass(frozen=True)
class AutomaticCheck:
    """A figure measured from the version's own telemetry, beside its threshold and verdict."""

    key: str
    title: str
    dimension: str
    measured: float | None
    threshold: float
    comparison: str  # "<=" or ">="
    unit: str  # "ms" or "share"
    samples: int
    min_samples: int
    verdict: str  # pass | fail | unknown

    @property
    def ok(self) -> bool:
        return self.verdict == PASS

    def _fmt(self, value: float) -> str:
        return f"{value:.0f} ms" if self.unit == "ms" else f"{value:.1%}"

    @property
    def measured_display(self) -> str:
        return "—" if self.measured is None else self._fmt(self.measured)

    @property
    def threshold_display(self) -> str:
        return f"{'≤' if self.comparison == '<=' else '≥'} {self._fmt(self.threshold)}"

    @property
    def reason(self) -> str:
        if self.verdict == UNKNOWN:
            return f"{self.key}: unknown — {self.samples} samples, needs {self.min_samples}"
        if self.verdict == FAIL:
            return (f"{self.key}: {self.measured_display}, needs {self.threshold_display} "
                    f"({self.samples} samples)")
        return ""

    def as_dict(self) -> dict:
        return {
            "key": self.key, "title": self.title, "measured": self.measured, "threshold": self.threshold,
            "comparison": self.comparison, "unit": self.unit, "samples": self.samples,
            "min_samples": self.min_samples, "verdict": self.verdict, "detail": self.reason,
        }


@dataclass(frozen=True)
class DimensionVerdict:
    dimension: str
    status: str  # pass | fail | unknown
    failing: list[str]
    items: list[ItemVerdict] = field(default_factory=list)
    automatic: list[AutomaticCheck] = field(default_factory=list)

    @property
    def label(self) -> str:
        return Dimension(self.dimension).label

    def as_dict(self) -> dict:
        return {
            "status": self.status, "failing": list(self.failing),
            "items": [i.as_dict() for i in self.items], "automatic": [a.as_dict() for a in self.automatic],
        }


@dataclass(frozen=True)
class Readiness:
    version_id: int
    ready: bool
    dimensions: dict[str, DimensionVerdict]
    failing: list[str]
    computed_at: datetime

    @property
    def status(self) -> str:
        """ready | not-ready, for badges."""
        return ReadinessStatus.READY if self.ready else ReadinessStatus.NOT_READY

    @property
    def in_grace(self) -> list[ItemVerdict]:
        """Items added after this version was evaluated, not evaluated yet, that block from their
        `grace_until` on; soonest first."""
        items = [i for d in self.dimensions.values() for i in d.items if i.in_grace]
        return sorted(items, key=lambda i: (i.grace_until, i.key))

    def as_dict(self) -> dict:
        return {
            "ready": self.ready,
            "dimensions": {name: d.as_dict() for name, d in self.dimensions.items()},
            "failing": list(self.failing),
            "in_grace": [{"key": i.key, "grace_until": _iso(i.grace_until)} for i in self.in_grace],
            "computed_at": _iso(self.computed_at),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _verdict(*, measured: float | None, threshold: float, comparison: str, samples: int, min_samples: int) -> str:
    # Too few samples is "unknown", never "pass".
    if samples < min_samples or measured is None:
        return UNKNOWN
    ok = measured <= threshold if comparison == "<=" else measured >= threshold
    return PASS if ok else FAIL


def automatic_check(*, key, title, dimension, measured, threshold, comparison, unit, samples,
                    min_samples) -> AutomaticCheck:
    """A measured figure and its verdict: what a registered provider returns for each of its checks."""
    return AutomaticCheck(
        key=key, title=title, dimension=dimension, measured=measured, threshold=threshold, comparison=comparison,
        unit=unit, samples=samples, min_samples=min_samples,
        verdict=_verdict(measured=measured, threshold=threshold, comparison=comparison, samples=samples,
                         min_samples=min_samples),
    )


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def percentile_nearest_rank(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile (the smallest value with at least q of the data at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


# Each provider answers for one or more dimensions: (version) -> its checks, a query or two each.
CheckProvider = Callable[[AgentVersion], list[AutomaticCheck]]
_providers: list[CheckProvider] = []


def register_automatic_checks(provider: CheckProvider) -> None:
    """Called from an AppConfig.ready(); registering the same provider twice keeps one."""
    if provider not in _providers:
        _providers.append(provider)


def automatic_checks(*, version: AgentVersion) -> list[AutomaticCheck]:
    """Every registered automatic check of a version (docs/architecture.md, "Where each rule lives")."""
    return [check for provider in _providers for check in provider(version)]


def in_grace_for(item: ChecklistItem, *, last_evaluated_at: datetime | None, now: datetime) -> bool:
    """Whether `item`, with no result for a version, is still in its grace period for it: every
    evaluation of the version was recorded before the item existed (it was judged without it) and
    the grace has not ended. The item applies to evaluations recorded after it: once the version is
    evaluated again, or if it never was before, the item counts at once."""
    return (item.grace_until is not None and now < item.grace_until
            and last_evaluated_at is not None and last_evaluated_at < item.created_at)


def _item_verdict(item: ChecklistItem, result: EvaluationResult | None, now: datetime,
                  last_evaluated_at: datetime | None = None) -> ItemVerdict:
    base = {"key": item.key, "title": item.title, "dimension": item.dimension}
    if result is None:
        if in_grace_for(item, last_evaluated_at=last_evaluated_at, now=now):
            return ItemVerdict(**base, status=MissingResult.GRACE, ok=True, grace_until=item.grace_until)
        return ItemVerdict(**base, status=MissingResult.NOT_EVALUATED, ok=False, reason=f"{item.key}: not evaluated")
    evaluation = result.evaluation
    who = evaluation.evaluated_by.get_username() if evaluation.evaluated_by else "a deleted user"
    facts = {
        "evidence": result.evidence, "evaluation_id": evaluation.pk, "evaluated_by": who,
        "evaluated_at": evaluation.evaluated_at, "expires_at": evaluation.expires_at,
    }
    if evaluation.expires_at <= now:
        day = timezone.localtime(evaluation.expires_at).date().isoformat()
        return ItemVerdict(**base, **facts, status=MissingResult.EXPIRED, ok=False,
                           reason=f"{item.key}: expired on {day} (evaluation #{evaluation.pk} by {who})")
    expiring = evaluation.expires_at - now <= EXPIRING_SOON
    if result.status == ResultStatus.FAIL:
        return ItemVerdict(**base, **facts, status=result.status, ok=False, expiring_soon=expiring,
                           reason=f"{item.key}: failed on evaluation #{evaluation.pk} by {who}")
    return ItemVerdict(**base, **facts, status=result.status, ok=True, expiring_soon=expiring)


def automatic_checks_cached(*, version: AgentVersion) -> list[AutomaticCheck]:
    key = f"readiness:automatic:v1:{version.pk}"
    checks = cache.get(key)
    if checks is None:
        checks = automatic_checks(version=version)
        cache.set(key, checks, AUTOMATIC_CACHE_SECONDS)
    return checks


def version_readiness(*, version: AgentVersion, now: datetime | None = None, cached: bool = False) -> Readiness:
    """Ready only when, in every dimension, each active item's latest result is pass or n/a and
    unexpired (an item added after the version's last evaluation may instead be in its grace
    period: in_grace_for), and every automatic check passes. A handful of queries, whatever the item count.
    `cached=True` (list pages) may reuse automatic figures up to a minute old; manual results are
    always read fresh, and the promotion gate never uses that cache (the event checks keep their
    own, keyed by the version's newest event: telemetry/readiness.py)."""
    now = now or timezone.now()
    items = list(ChecklistItem.objects.filter(active=True).order_by("dimension", "position", "key"))
    latest: dict[int, EvaluationResult] = {}
    # Newest first: the first result seen per item is its latest; older ones never rescue it.
    results = (
        EvaluationResult.objects.filter(evaluation__version=version, item__active=True)
        .select_related("evaluation", "evaluation__evaluated_by")
        .order_by("-evaluation__evaluated_at", "-evaluation_id")
    )
    for result in results:
        latest.setdefault(result.item_id, result)
    last_evaluated_at = None
    if any(i.grace_until is not None and now < i.grace_until and i.pk not in latest for i in items):
        last_evaluated_at = (Evaluation.objects.filter(version=version).order_by("-evaluated_at")
                             .values_list("evaluated_at", flat=True).first())
    checks = automatic_checks_cached(version=version) if cached else automatic_checks(version=version)

    dimensions: dict[str, DimensionVerdict] = {}
    failing_all: list[str] = []
    for dimension in Dimension.values:
        verdicts = [_item_verdict(i, latest.get(i.pk), now, last_evaluated_at) for i in items
                    if i.dimension == dimension]
        autos = [c for c in checks if c.dimension == dimension]
        failing = [v.reason for v in verdicts if not v.ok] + [c.reason for c in autos if not c.ok]
        if any(not v.ok for v in verdicts) or any(c.verdict == FAIL for c in autos):
            status = FAIL
        elif any(c.verdict == UNKNOWN for c in autos):
            status = UNKNOWN
        else:
            status = PASS
        dimensions[dimension] = DimensionVerdict(dimension=dimension, status=status, failing=failing,
                                                 items=verdicts, automatic=autos)
        failing_all.extend(failing)
    ready = all(d.status == PASS for d in dimensions.values())
    return Readiness(version_id=version.pk, ready=ready, dimensions=dimensions, failing=failing_all, computed_at=now)
