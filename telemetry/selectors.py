"""Reads of the telemetry app: stage figures for gates and guardrails, the discrepancy report, the shadow panel; rollups only."""
from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, F, Max, Min, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.html import json_script

from agents.models import AgentVersion
from rolloutops.cache import cache_get, cache_set
from rolloutops.exceptions import NotFound

from . import charts, statistics
from .models import (
    AgreementHour, Arm, DiscrepantPair, Event, EventKind, LatencyHour, PairCell, PairHour, Reference, RolloutFold, StageHour,
    UnfoldedEvent,
)

RECENT_DISCREPANT = 20
REFERENCES = tuple(Reference.values)  # what a candidate is compared with: "human", "incumbent"


@dataclass(frozen=True)
class ArmCounts:
    """One arm's decisions in one stage (docs/architecture.md, "Events")."""

    requests: int = 0  # decisions that acted on requests
    errors: int = 0  # outcome error or timeout
    escalations: int = 0
    timed: int = 0  # with a latency
    slow: int = 0  # latency above the stage's p95 limit
    labelled: int = 0  # candidate only: decisions a human also decided
    disagreements: int = 0  # candidate only: of those, where the labels differ
    last_at: datetime | None = None  # the latest decision's occurred_at


@dataclass(frozen=True)
class StageCounts:
    stage: str
    candidate: ArmCounts
    control: ArmCounts


@dataclass(frozen=True)
class StageMetrics:
    """Everything a stage's gates and guardrails read: the candidate's arm, the control's, pairs."""

    rollout_id: int
    stage: str
    candidate: ArmCounts
    control: ArmCounts
    latency_counts: dict[int, int] = field(default_factory=dict)  # candidate: bucket index -> count
    p95_latency_ms: float | None = None  # candidate, from the histogram (for display)
    pairs: int = 0  # candidate decisions paired with a human's
    agreements: int = 0
    incumbent_pairs: int = 0  # candidate decisions paired with the incumbent version's
    incumbent_agreements: int = 0
    first_event_at: datetime | None = None
    computed_at: datetime | None = None
    pending_events: int = 0

    # The candidate's figures under their historical names (pages, evidence, gates).
    @property
    def agent_events(self) -> int:
        return self.candidate.requests

    @property
    def errors(self) -> int:
        return self.candidate.errors

    @property
    def escalations(self) -> int:
        return self.candidate.escalations

    @property
    def last_agent_event_at(self) -> datetime | None:
        return self.candidate.last_at

    def counts(self) -> StageCounts:
        return StageCounts(self.stage, self.candidate, self.control)


def _computed_at(rollout_id: int) -> datetime | None:
    return RolloutFold.objects.filter(rollout_id=rollout_id).values_list("computed_at", flat=True).first()


def _pending(rollout_id: int) -> int:
    # The fold queue: a handful of rows between folds, never the event table.
    return UnfoldedEvent.objects.filter(rollout_id=rollout_id).count()


def _fold_state(rollout_id: int) -> tuple[datetime | None, int]:
    """(the fold watermark, events pending the fold) in one round trip: what a view reads live
    before the figures it takes from the cache under that watermark."""
    pending = (UnfoldedEvent.objects.filter(rollout_id=OuterRef("rollout_id")).order_by().values("rollout_id")
               .annotate(n=Count("*")).values("n"))
    found = (RolloutFold.objects.filter(rollout_id=rollout_id)
             .annotate(pending=Coalesce(Subquery(pending), 0)).values_list("computed_at", "pending").first())
    if found is None:  # never folded: nothing is cached under a watermark yet
        return None, _pending(rollout_id)
    return found[0], int(found[1])


def _arms(rollout_id: int, stages: list[str] | None) -> dict[tuple[str, str], dict]:
    rows = StageHour.objects.filter(rollout_id=rollout_id, arm__in=[Arm.CANDIDATE, Arm.CONTROL])
    if stages is not None:
        rows = rows.filter(stage__in=stages)
    return {
        (row["stage"], row["arm"]): row
        for row in rows.values("stage", "arm").annotate(
            n=Sum("decisions"), err=Sum("errors"), esc=Sum("escalations"), tm=Sum("timed"), sl=Sum("slow"),
            first=Min("first_event_at"), last=Max("last_event_at"),
        )
    }


def _human_pairs(rollout_id: int, stages: list[str] | None, reference: str = Reference.HUMAN) -> dict[str, tuple[int, int]]:
    rows = PairCell.objects.filter(rollout_id=rollout_id, reference=reference)
    if stages is not None:
        rows = rows.filter(stage__in=stages)
    return {
        row["stage"]: (int(row["n"] or 0), int(row["agreed"] or 0))
        for row in rows.values("stage").annotate(n=Sum("pairs"), agreed=Sum("pairs", filter=Q(agent_label=F("reference_label"))))
    }


def _arm_counts(row: dict | None, pairs: tuple[int, int] = (0, 0)) -> ArmCounts:
    if not row:
        return ArmCounts(labelled=pairs[0], disagreements=pairs[0] - pairs[1])
    return ArmCounts(requests=int(row["n"] or 0), errors=int(row["err"] or 0), escalations=int(row["esc"] or 0),
                     timed=int(row["tm"] or 0), slow=int(row["sl"] or 0), labelled=pairs[0],
                     disagreements=pairs[0] - pairs[1], last_at=row["last"])


def stage_counts(*, rollout_id: int, stages: list[str]) -> list[StageCounts]:
    """Cumulative counts of each stage, per arm, in the order given (the watch's input)."""
    arms = _arms(rollout_id, stages)
    pairs = _human_pairs(rollout_id, stages)
    return [StageCounts(stage, _arm_counts(arms.get((stage, Arm.CANDIDATE)), pairs.get(stage, (0, 0))),
                        _arm_counts(arms.get((stage, Arm.CONTROL)))) for stage in stages]


def stage_metrics(*, rollout_id: int, stage: str) -> StageMetrics:
    """Everything the rollouts app gates and guards on, for one stage of one rollout. The sums over
    the rollups are cached under the fold watermark (see _at_watermark)."""
    watermark, pending = _fold_state(rollout_id)
    arms, human, incumbent, latency = _at_watermark(
        rollout_id, f"stage:{stage}", watermark, lambda: _stage_rollups(rollout_id, stage, watermark))
    candidate_row = arms.get((stage, Arm.CANDIDATE))
    return StageMetrics(
        rollout_id=rollout_id,
        stage=stage,
        candidate=_arm_counts(candidate_row, human),
        control=_arm_counts(arms.get((stage, Arm.CONTROL))),
        latency_counts=latency,
        p95_latency_ms=statistics.percentile_from_histogram(latency, 0.95),
        pairs=human[0],
        agreements=human[1],
        incumbent_pairs=incumbent[0],
        incumbent_agreements=incumbent[1],
        first_event_at=candidate_row["first"] if candidate_row else None,
        computed_at=watermark,
        pending_events=pending,
    )


def _stage_rollups(rollout_id: int, stage: str, watermark: datetime | None) -> tuple[dict, tuple[int, int], tuple[int, int], dict[int, int]]:
    arms = _arms(rollout_id, [stage])
    groups = _groups(rollout_id, watermark)
    human = _pair_totals(groups, stage, Reference.HUMAN)
    incumbent = _pair_totals(groups, stage, Reference.INCUMBENT)
    latency = {
        bucket: int(count)
        for bucket, count in LatencyHour.objects.filter(rollout_id=rollout_id, stage=stage, arm=Arm.CANDIDATE)
        .values_list("bucket")
        .annotate(total=Sum("count"))
        .values_list("bucket", "total")
        if count
    }
    return arms, human, incumbent, latency


def stage_hourly(*, rollout_id: int, stages: list[str]) -> list[dict]:
    """Hourly counts of some stages of a rollout, oldest first, from the rollup (the guardrail chart)."""
    return [
        {"hour": row["hour"].isoformat(), "stage": row["stage"], "events": row["decisions"],
         "errors": row["errors"], "escalations": row["escalations"], "timed": row["timed"], "slow": row["slow"]}
        for row in StageHour.objects.filter(rollout_id=rollout_id, stage__in=stages, arm=Arm.CANDIDATE).order_by("hour")
        .values("hour", "stage", "decisions", "errors", "escalations", "timed", "slow")
    ]


def _rate(agreements: int, pairs: int) -> dict:
    low, high = statistics.wilson_interval(agreements, pairs)
    return {"rate": agreements / pairs if pairs else None, "low": low, "high": high}


# Rollups change only when a fold adds to the rollout's rows, which moves its computed_at in the same
# transaction (telemetry/fold.py): figures are cached under that watermark, so dashboards polling
# every few seconds never recompute unchanged statistics. The short TTL bounds what the watermark
# does not see: the retention's deletes of old discrepant pairs.
DISCREPANCY_CACHE_SECONDS = 30

# An entry cached under a watermark never changes under it, so each process also keeps the entries
# it computed or read, for the same TTL from then: a view between folds reads them without a round
# trip to the shared cache or unpickling 720 hours again. Only the newest watermark's entries of a
# rollout are kept (a fold makes the older ones unreachable). Callers never change what they are given.
_LOCAL_ROLLOUTS = 128
_local: dict[int, tuple[float, dict[str, tuple[float, object]]]] = {}  # rollout -> (watermark, key -> (until, value))
_local_lock = threading.Lock()


def _local_get(rollout_id: int, mark: float, key: str):
    held = _local.get(rollout_id)
    if held is None or held[0] != mark:
        return None
    found = held[1].get(key)
    if found is None or found[0] <= time.monotonic():
        return None
    return found[1]


def _local_put(rollout_id: int, mark: float, key: str, value) -> None:
    with _local_lock:
        held = _local.get(rollout_id)
        if held is not None and held[0] > mark:
            return  # a view that read an older watermark than another's: nothing to keep
        if held is None or held[0] != mark:
            if held is None and len(_local) >= _LOCAL_ROLLOUTS:
                del _local[next(iter(_local))]  # the rollout whose entries are oldest
            _local.pop(rollout_id, None)
            held = _local[rollout_id] = (mark, {})
        held[1][key] = (time.monotonic() + DISCREPANCY_CACHE_SECONDS, value)


def rollups_cache_clear() -> None:
    """Forget this process's entries (tests, whose databases reuse ids and times)."""
    with _local_lock:
        _local.clear()


def _watermarked(rollout_id: int, watermark: datetime | None, key: str, compute, *, shared: bool = True):
    """`compute()` under `key` (which holds the rollout's fold watermark): this process's copy, else
    the shared cache's (unless not `shared`: cheaper to compute than to fetch), else computed."""
    mark = watermark.timestamp() if watermark else 0.0
    found = _local_get(rollout_id, mark, key)
    if found is None:
        found = cache_get(key) if shared else None  # a cache outage computes, never fails (rolloutops/cache.py)
        if found is None:
            found = compute()
            if shared:
                cache_set(key, found, DISCREPANCY_CACHE_SECONDS)
        _local_put(rollout_id, mark, key, found)
    return found


def _at_watermark(rollout_id: int, name: str, watermark: datetime | None, compute, *, shared: bool = True):
    """`compute()`, cached under the rollout's fold watermark: a sum over a rollup is computed once
    per fold that touches the rollout, not once per viewer, poll and panel of a page (bench/rollout_page.py)."""
    # The name may carry a caller's stage name: digested, so a key stays short and plain whatever it holds.
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    key = f"rollups:v1:{rollout_id}:{digest}:{watermark.timestamp() if watermark else 0}"
    return _watermarked(rollout_id, watermark, key, compute, shared=shared)


def _pair_groups(rollout_id: int) -> dict[str, list[tuple]]:
    """The pair rollup summed two ways, every reference and stage at once: "cells" (reference, stage,
    segment, agent label, reference label, pairs) and "hours" (reference, stage, hour, pairs,
    agreements), each in its key's order. The fold keeps both sums (PairCell, AgreementHour) beside
    PairHour, so this reads their few rows, not every hour's cells; every report, count and stage
    figure of a view is derived from them. pair_groups_from_hours is the same from PairHour."""
    cells = PairCell.objects.filter(rollout_id=rollout_id).order_by(
        "reference", "stage", "segment", "agent_label", "reference_label")
    hours = AgreementHour.objects.filter(rollout_id=rollout_id).order_by("reference", "stage", "hour")
    return {"cells": list(cells.values_list("reference", "stage", "segment", "agent_label", "reference_label", "pairs")),
            "hours": list(hours.values_list("reference", "stage", "hour", "pairs", "agreements"))}


def pair_groups_from_hours(rollout_id: int) -> dict[str, list[tuple]]:
    """_pair_groups summed from PairHour itself (two passes over every hour's cells): what the
    fold's PairCell and AgreementHour must always equal (tests/telemetry/test_pair_summaries.py)."""
    rows = PairHour.objects.filter(rollout_id=rollout_id)
    cells = (rows.values_list("reference", "stage", "segment", "agent_label", "reference_label")
             .annotate(n=Sum("pairs")).values_list("reference", "stage", "segment", "agent_label", "reference_label", "n")
             .order_by("reference", "stage", "segment", "agent_label", "reference_label"))
    hours = (rows.values_list("reference", "stage", "hour")
             .annotate(n=Sum("pairs"), a=Sum("pairs", filter=Q(agent_label=F("reference_label"))))
             .values_list("reference", "stage", "hour", "n", "a").order_by("reference", "stage", "hour"))
    return {"cells": [(*row[:5], int(row[5])) for row in cells],
            "hours": [(*row[:3], int(row[3]), int(row[4] or 0)) for row in hours]}


def _groups(rollout_id: int, watermark: datetime | None) -> dict[str, list[tuple]]:
    # Two reads of a few hundred rows: kept in this process only, not worth a trip to the shared cache.
    return _at_watermark(rollout_id, "pair-groups", watermark, lambda: _pair_groups(rollout_id), shared=False)


def _pair_totals(groups: dict, stage: str, reference: str) -> tuple[int, int]:
    """(pairs, agreements) of one stage against one reference."""
    pairs = agreed = 0
    for ref, row_stage, _, agent_label, reference_label, n in groups["cells"]:
        if ref == reference and row_stage == stage:
            pairs += n
            if agent_label == reference_label:
                agreed += n
    return pairs, agreed


def reference_pairs(*, rollout_id: int, stage: str | None = None, watermark: datetime | None = None) -> dict[str, int]:
    """How many pairs each reference has: {"human": n, "incumbent": m}. Kept in the process under the
    fold watermark (read here unless the caller has it), summed from the pair groups once a fold."""
    if watermark is None:
        watermark = _computed_at(rollout_id)

    def count() -> dict[str, int]:
        counts = dict.fromkeys(Reference.values, 0)
        for ref, row_stage, *_, n in _groups(rollout_id, watermark)["cells"]:
            if ref in counts and (not stage or row_stage == stage):
                counts[ref] += n
        return counts

    return _at_watermark(rollout_id, f"references:{stage or '*'}", watermark, count, shared=False)


def default_reference(counts: dict[str, int]) -> str:
    """Humans when any human decided a request the candidate decided too, else the incumbent version."""
    return Reference.HUMAN if counts[Reference.HUMAN] or not counts[Reference.INCUMBENT] else Reference.INCUMBENT


def rollout_discrepancy(*, rollout_id: int, stage: str | None = None, against: str | None = None,
                        watermark: datetime | None = None, pending: int | None = None) -> dict:
    """The shadow-comparison figures of a rollout (every stage, or one) against one reference (humans
    or the incumbent version; by default humans when there are human pairs), from the pair rollup.
    Cached under the fold watermark (read here, with the events pending the fold, unless the caller
    has them: both are live figures of the view)."""
    if watermark is None:
        watermark, pending = _fold_state(rollout_id)
    counts = reference_pairs(rollout_id=rollout_id, stage=stage, watermark=watermark)
    if against is None:
        against = default_reference(counts)
    elif against not in Reference.values:
        raise NotFound(f"no reference {against!r}: human or incumbent")
    report = _report(rollout_id=rollout_id, stage=stage, against=against, watermark=watermark)
    return {**report, "references": counts, "pending_events": _pending(rollout_id) if pending is None else pending}


def _report(*, rollout_id: int, stage: str | None, against: str, watermark: datetime | None) -> dict:
    """The report of one stage (or all) against one reference, cached under the fold watermark."""
    if stage is None:
        stages = {row_stage for ref, row_stage, *_ in _groups(rollout_id, watermark)["cells"] if ref == against}
        if len(stages) == 1:
            # Every pair against this reference is of one stage (a rollout in its shadow stage): the
            # report of every stage is that stage's, discrepant pairs included (each is written with
            # its count, in its stage), computed once for the gates and the panel.
            return {**_report(rollout_id=rollout_id, stage=stages.pop(), against=against, watermark=watermark),
                    "stage": None}
    key = f"discrepancy:v2:{rollout_id}:{stage or '*'}:{against}:{watermark.timestamp() if watermark else 0}"
    return _watermarked(rollout_id, watermark, key,
                        lambda: _discrepancy(rollout_id=rollout_id, stage=stage, against=against, computed_at=watermark))


@functools.lru_cache(maxsize=64)
def _flag_segments(tallies: tuple[tuple[str, int, int], ...]) -> dict[str, statistics.SegmentResult]:
    """statistics.flag_segments, once per set of tallies in a process: the reports of one view (all
    stages, the current stage) often hold the same segments, and the Fisher tests are their costliest part."""
    return statistics.flag_segments({name: (a, n) for name, a, n in tallies})


def _discrepancy(*, rollout_id: int, stage: str | None, against: str, computed_at) -> dict:
    groups = _groups(rollout_id, computed_at)

    confusion: dict[tuple[str, str], int] = {}
    segments: dict[str, list[int]] = {}
    for ref, row_stage, segment, agent_label, human_label, pairs in groups["cells"]:
        if ref != against or (stage and row_stage != stage):
            continue
        confusion[(agent_label, human_label)] = confusion.get((agent_label, human_label), 0) + pairs
        tally = segments.setdefault(segment, [0, 0])
        tally[1] += pairs
        if agent_label == human_label:
            tally[0] += pairs

    by_hour: dict[datetime, list[int]] = {}
    for ref, row_stage, hour, pairs, agreements in groups["hours"]:
        if ref != against or (stage and row_stage != stage):
            continue
        tally = by_hour.setdefault(hour, [0, 0])
        tally[0] += pairs
        tally[1] += agreements
    hourly = [{"hour": hour.isoformat(), "pairs": pairs, "agreements": agreements, **_rate(agreements, pairs)}
              for hour, (pairs, agreements) in sorted(by_hour.items())]

    total = sum(confusion.values())
    agreements = sum(count for (agent_label, human_label), count in confusion.items() if agent_label == human_label)
    low, high = statistics.wilson_interval(agreements, total)

    flagged = _flag_segments(tuple(sorted((name, a, n) for name, (a, n) in segments.items())))
    segment_rows = [
        {"segment": r.segment, "pairs": r.pairs, "agreements": r.agreements, "rate": r.rate, "low": r.low,
         "high": r.high, "p_value": r.p_value, "flagged": r.flagged}
        for r in sorted(flagged.values(), key=lambda r: (not r.flagged, -r.pairs, r.segment))
    ]

    directions = []
    labels = sorted({label for pair in confusion for label in pair})
    for i, first in enumerate(labels):
        for second in labels[i + 1:]:
            a_to_b, b_to_a = confusion.get((first, second), 0), confusion.get((second, first), 0)
            if a_to_b or b_to_a:
                d = statistics.mcnemar_direction(a_to_b, b_to_a)
                directions.append({"agent_label": first, "human_label": second, "a_to_b": d.a_to_b, "b_to_a": d.b_to_a,
                                   "p_value": d.p_value, "dominant": d.dominant, "significant": d.significant})
    directions.sort(key=lambda d: (d["p_value"], -(d["a_to_b"] + d["b_to_a"])))

    recent = DiscrepantPair.objects.filter(rollout_id=rollout_id, reference=against)
    if stage:
        recent = recent.filter(stage=stage)
    if not total:
        # A discrepant pair is written with its count, in the fold's statement: none counted, none stored.
        recent = recent.none()
    recent_rows = [
        {**row, "human_label": row["reference_label"], "occurred_at": row["occurred_at"].isoformat()}
        for row in recent.order_by("-occurred_at", "-id").values(
            "request_key", "segment", "agent_label", "reference_label", "occurred_at"
        )[:RECENT_DISCREPANT]
    ]
    return {
        "rollout": rollout_id,
        "stage": stage,
        "against": against,
        "pairs": total,
        "agreements": agreements,
        "agreement": agreements / total if total else None,
        "interval": [low, high],
        "kappa": statistics.cohen_kappa(confusion),
        "confusion": statistics.confusion_matrix(confusion),
        "segments": segment_rows,
        "flagged_segments": [r["segment"] for r in segment_rows if r["flagged"]],
        "directions": directions,
        "hourly": hourly,
        "recent_discrepant": recent_rows,
        "computed_at": computed_at.isoformat() if computed_at else None,
    }


def reference_summary(*, rollout_id: int, against: str, stage: str | None = None,
                      watermark: datetime | None = None) -> dict:
    """Pairs, agreement and its Wilson interval against one reference (the side-by-side strip).
    Cached under the fold watermark on its own, so the strip reads two small entries, not two reports."""
    if watermark is None:
        watermark = _computed_at(rollout_id)

    def summarize() -> dict:
        report = _report(rollout_id=rollout_id, stage=stage, against=against, watermark=watermark)
        return {"reference": against, "label": str(Reference(against).label), "pairs": report["pairs"],
                "agreement": report["agreement"], "interval": report["interval"], "kappa": report["kappa"],
                "flagged_segments": report["flagged_segments"]}

    return _at_watermark(rollout_id, f"summary:{stage or '*'}:{against}", watermark, summarize, shared=False)


def _local_hours(hourly: list[dict]) -> list[dict]:
    """The hours (UTC in the cached report) as wall-clock times of the zone the person sees."""
    zone = timezone.get_current_timezone()  # once: each lookup reads the request's zone from a context-local
    return [{**row, "hour": datetime.fromisoformat(row["hour"]).astimezone(zone).strftime("%Y-%m-%d %H:%M")}
            for row in hourly]


def disagreement_cells(confusion: dict) -> list[dict]:
    """The confusion matrix's off-diagonal cells with pairs, most first: each label pair the
    candidate and the reference disagree on, and how often."""
    labels, matrix = confusion["labels"], confusion["matrix"]
    cells = [{"agent_label": labels[i], "reference_label": labels[j], "pairs": matrix[i][j]}
             for i in range(len(labels)) for j in range(len(labels)) if i != j and matrix[i][j]]
    return sorted(cells, key=lambda c: (-c["pairs"], c["agent_label"], c["reference_label"]))


def _panel_charts(confusion: dict, segments: dict) -> dict:
    return {"confusion_figure": confusion, "segments_figure": segments,
            "confusion_script": json_script(confusion, "shadow-confusion"),
            "segments_script": json_script(segments, "shadow-segments")}


def shadow_panel_context(*, rollout, bar: float | None, against: str | None = None,
                         drill_url: Callable[..., str] | None = None,
                         fold_state: tuple[datetime | None, int] | None = None,
                         pair_url: Callable[[str], str] | None = None) -> dict:
    """Context of rollouts/shadow_panel.html: {"rollout", "shadow": figures against one reference,
    charts, recent discrepancies, the disagreeing label pairs, and both references side by side}.
    `drill_url(against=…, segment=…)` is the page listing a segment's discrepant pairs (the caller's
    URL), which the segment chart's bars open; `pair_url(request_key)` the page of one pair. `fold_state`: (watermark, pending) as the caller's
    page read them a moment before (stage_metrics' computed_at and pending_events), else read here."""
    # Read once: every figure below is cached under it.
    watermark, pending = fold_state if fold_state is not None else _fold_state(rollout.pk)
    report = rollout_discrepancy(rollout_id=rollout.pk, against=against, watermark=watermark, pending=pending)
    has_pairs = report["pairs"] > 0
    zone = timezone.get_current_timezone_name()
    # The hourly chart (720 hours converted to the viewer's zone) changes with the fold, the zone and the bar.
    agreement_figure = _at_watermark(
        rollout.pk, f"agreement-figure:{report['against']}:{zone}:{bar}", watermark,
        lambda: charts.agreement_over_time(_local_hours(report["hourly"]), bar=bar, zone=timezone.localtime().tzname()),
    ) if has_pairs else None
    # … and its <script> element (~90 kB of JSON), serialized once in this process, not once a view.
    agreement_script = _at_watermark(
        rollout.pk, f"agreement-script:{report['against']}:{zone}:{bar}", watermark,
        lambda: json_script(agreement_figure, "shadow-agreement"), shared=False,
    ) if has_pairs else ""
    low, high = report["interval"]

    def segments_figure() -> dict:
        urls = ([drill_url(against=report["against"], segment=row["segment"]) for row in report["segments"]]
                if drill_url else None)
        return charts.segment_bars(report["segments"], bar=bar, urls=urls)

    # The confusion and segment charts and their <script> elements: functions of the report (and the
    # bar, and whether the bars link) alone, so kept under the watermark beside the hourly chart's.
    charted = _at_watermark(
        rollout.pk, f"panel-charts:{report['against']}:{bar}:{drill_url is not None}", watermark,
        lambda: _panel_charts(charts.confusion_heatmap(report["confusion"]), segments_figure()), shared=False,
    ) if has_pairs else {"confusion_figure": None, "segments_figure": None, "confusion_script": "", "segments_script": ""}
    return {
        "rollout": rollout,
        "shadow": {
            "report": report,
            "against": report["against"],
            "references": [reference_summary(rollout_id=rollout.pk, against=ref, watermark=watermark)
                           for ref in Reference.values],
            "has_pairs": has_pairs,
            "agreement_bar": bar,
            "below_bar": has_pairs and bar is not None and low < bar,
            "low": low,
            "high": high,
            "computed_at": datetime.fromisoformat(report["computed_at"]) if report["computed_at"] else None,
            "recent": _at_watermark(
                rollout.pk, f"recent:{report['against']}:{pair_url is not None}", watermark,
                lambda: [{**row, "occurred_at": datetime.fromisoformat(row["occurred_at"]),
                          "url": pair_url(row["request_key"]) if pair_url else None}
                         for row in report["recent_discrepant"]], shared=False),
            "agreement_figure": agreement_figure,
            "agreement_script": agreement_script,
            **charted,
            "disagreements": disagreement_cells(report["confusion"]) if has_pairs else [],
        },
    }


def discrepant_pairs(*, rollout_id: int, reference: str, segment: str | None = None, agent_label: str | None = None,
                     reference_label: str | None = None):
    """A rollout's discrepant pairs against one reference, newest first; None leaves a filter off
    ("" is a segment: requests that named none). Read by the (rollout, reference, -occurred_at) index."""
    rows = DiscrepantPair.objects.filter(rollout_id=rollout_id, reference=reference)
    if segment is not None:
        rows = rows.filter(segment=segment)
    if agent_label is not None:
        rows = rows.filter(agent_label=agent_label)
    if reference_label is not None:
        rows = rows.filter(reference_label=reference_label)
    return rows.order_by("-occurred_at", "-id")


def discrepant_pair_neighbours(*, request_key: str, **filters) -> dict | None:
    """Where one request stands among the discrepant pairs of `filters` (those of discrepant_pairs):
    its position (1 = newest), the total, and the request keys just newer and just older; None
    when it is not one of them."""
    rows = discrepant_pairs(**filters)
    here = rows.filter(request_key=request_key).values("id", "occurred_at").first()
    if here is None:
        return None
    at, pk = here["occurred_at"], here["id"]
    newer = rows.filter(Q(occurred_at__gt=at) | Q(occurred_at=at, id__gt=pk))
    older = rows.filter(Q(occurred_at__lt=at) | Q(occurred_at=at, id__lt=pk))
    return {
        "position": newer.count() + 1,
        "total": rows.count(),
        "newer": newer.order_by("occurred_at", "id").values_list("request_key", flat=True).first(),
        "older": older.values_list("request_key", flat=True).first(),
    }


# How many of each version's newest decisions show which labels an agent uses: every label in
# steady use appears there, and the read stays an index range (event_version_kind_recent).
LABELS_PER_VERSION = 2000
LABELS_VERSIONS = 10


def agent_labels(*, agent_id: int) -> list[str]:
    """The decisions an agent makes: the labels of its own newest decisions (its ten newest
    versions), sorted. What a person resolving its ticket chooses from, so the human side of a pair
    speaks the agent's vocabulary (docs/pages.md, "Ticket decisions")."""
    versions = (AgentVersion.objects.filter(agent_id=agent_id).order_by("-created_at", "-id")
                .values_list("id", flat=True)[:LABELS_VERSIONS])
    labels: set[str] = set()
    for version_id in versions:
        labels.update(Event.objects.filter(version_id=version_id, kind=EventKind.AGENT).order_by("-id")
                      .values_list("label", flat=True)[:LABELS_PER_VERSION])
    return sorted(labels, key=str.casefold)


def pair_detail(*, agent_id: int, request_key: str, rollout_id: int | None = None) -> dict | None:
    """Every decision on one request (an index lookup, not a scan): the candidate's, a human's, the
    incumbent version's; the candidate's trace pretty-printed."""
    events = list(Event.objects.filter(agent_id=agent_id, request_key=request_key).select_related("version")
                  .order_by("occurred_at", "id"))
    if not events:
        return None

    def pick(kind: str, arms: tuple[str, ...]):
        found = [e for e in events if e.kind == kind and e.arm in arms]
        preferred = [e for e in found if rollout_id is None or e.rollout_id == rollout_id]
        return (preferred or found or [None])[0]

    agent = pick(EventKind.AGENT, (Arm.CANDIDATE,)) or pick(EventKind.AGENT, (Arm.OTHER, Arm.CONTROL))
    incumbent = pick(EventKind.AGENT, (Arm.CONTROL,))
    if incumbent is agent:
        incumbent = None
    human = pick(EventKind.HUMAN, (Arm.LABEL, Arm.CONTROL))
    return {
        "agent_event": agent,
        "human_event": human,
        "incumbent_event": incumbent,
        "agrees": None if not (agent and human) else agent.label == human.label,
        "agrees_with_incumbent": None if not (agent and incumbent) else agent.label == incumbent.label,
        "trace_text": json.dumps(agent.trace, indent=2, sort_keys=True, ensure_ascii=False) if agent and agent.has_trace else "",
    }
