"""Reads of the telemetry app: stage figures for gates and guardrails, the discrepancy report, the shadow panel; rollups only."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.core.cache import cache
from django.db.models import F, Max, Min, Q, Sum

from rollouts.models import Rollout, RolloutStage, StageMode
from rolloutops.exceptions import NotFound

from . import charts, statistics
from .models import DiscrepantPair, Event, LatencyHour, PairHour, RolloutFold, StageHour, UnfoldedEvent

RECENT_DISCREPANT = 20


@dataclass(frozen=True)
class StageMetrics:
    rollout_id: int
    stage: str
    agent_events: int  # the stage's samples
    errors: int  # agent events with outcome error or timeout
    escalations: int
    latency_counts: dict[int, int] = field(default_factory=dict)  # bucket index -> count
    p95_latency_ms: float | None = None
    human_events: int = 0
    human_errors: int = 0
    pairs: int = 0
    agreements: int = 0
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None
    # The latest event of an hour in which the agent decided (an hour's last event may be a human's).
    last_agent_event_at: datetime | None = None
    computed_at: datetime | None = None
    pending_events: int = 0

    def latency_over(self, threshold_ms: float) -> int:
        """Agent events whose latency is certainly above `threshold_ms` (their bucket's lower bound is >= it)."""
        bounds = statistics.LATENCY_BUCKETS_MS
        return sum(
            count for index, count in self.latency_counts.items() if (bounds[index - 1] if index else 0.0) >= threshold_ms
        )


def _computed_at(rollout_id: int) -> datetime | None:
    return RolloutFold.objects.filter(rollout_id=rollout_id).values_list("computed_at", flat=True).first()


def _pending(rollout_id: int) -> int:
    # The fold queue: a handful of rows between folds, never the event table.
    return UnfoldedEvent.objects.filter(rollout_id=rollout_id).count()


def stage_metrics(*, rollout_id: int, stage: str) -> StageMetrics:
    """Everything the rollouts app gates and guards on, for one stage of one rollout."""
    counts = StageHour.objects.filter(rollout_id=rollout_id, stage=stage).aggregate(
        agents=Sum("agent_events"),
        errors=Sum("agent_errors"),
        escalations=Sum("agent_escalations"),
        humans=Sum("human_events"),
        human_errs=Sum("human_errors"),
        first_at=Min("first_event_at"),
        last_at=Max("last_event_at"),
        last_agent_at=Max("last_event_at", filter=Q(agent_events__gt=0)),
    )
    latency = {
        bucket: int(count)
        for bucket, count in LatencyHour.objects.filter(rollout_id=rollout_id, stage=stage)
        .values_list("bucket")
        .annotate(total=Sum("count"))
        .values_list("bucket", "total")
        if count
    }
    pairs = PairHour.objects.filter(rollout_id=rollout_id, stage=stage).aggregate(
        n=Sum("pairs"), agreed=Sum("pairs", filter=Q(agent_label=F("human_label")))
    )
    return StageMetrics(
        rollout_id=rollout_id,
        stage=stage,
        agent_events=int(counts["agents"] or 0),
        errors=int(counts["errors"] or 0),
        escalations=int(counts["escalations"] or 0),
        latency_counts=latency,
        p95_latency_ms=statistics.percentile_from_histogram(latency, 0.95),
        human_events=int(counts["humans"] or 0),
        human_errors=int(counts["human_errs"] or 0),
        pairs=int(pairs["n"] or 0),
        agreements=int(pairs["agreed"] or 0),
        first_event_at=counts["first_at"],
        last_event_at=counts["last_at"],
        last_agent_event_at=counts["last_agent_at"],
        computed_at=_computed_at(rollout_id),
        pending_events=_pending(rollout_id),
    )


def stage_hourly(*, rollout_id: int, stages: list[str]) -> list[dict]:
    """Hourly counts of some stages of a rollout, oldest first, from the rollup (the guardrail chart)."""
    return [
        {"hour": row["hour"].isoformat(), "stage": row["stage"], "events": row["agent_events"],
         "errors": row["agent_errors"], "escalations": row["agent_escalations"]}
        for row in StageHour.objects.filter(rollout_id=rollout_id, stage__in=stages).order_by("hour")
        .values("hour", "stage", "agent_events", "agent_errors", "agent_escalations")
    ]


def _rate(agreements: int, pairs: int) -> dict:
    low, high = statistics.wilson_interval(agreements, pairs)
    return {"rate": agreements / pairs if pairs else None, "low": low, "high": high}


# Rollups change only when a fold touches the rollout, which moves its computed_at: figures are
# cached under that watermark, so dashboards polling every few seconds never recompute unchanged
# statistics. The short TTL covers the rare fold that completes a pair without moving it.
DISCREPANCY_CACHE_SECONDS = 30


def rollout_discrepancy(*, rollout_id: int, stage: str | None = None) -> dict:
    """The shadow figures of a rollout (every stage, or one), from the pair rollup (telemetry/statistics.py)."""
    if not Rollout.objects.filter(pk=rollout_id).exists():
        raise NotFound(f"no rollout {rollout_id}")
    watermark = _computed_at(rollout_id)
    key = f"discrepancy:v1:{rollout_id}:{stage or '*'}:{watermark.timestamp() if watermark else 0}"
    report = cache.get(key)
    if report is None:
        report = _discrepancy(rollout_id=rollout_id, stage=stage, computed_at=watermark)
        cache.set(key, report, DISCREPANCY_CACHE_SECONDS)
    return {**report, "pending_events": _pending(rollout_id)}


def _discrepancy(*, rollout_id: int, stage: str | None, computed_at) -> dict:
    rows = PairHour.objects.filter(rollout_id=rollout_id)
    if stage:
        rows = rows.filter(stage=stage)

    confusion: dict[tuple[str, str], int] = {}
    segments: dict[str, list[int]] = {}
    for segment, agent_label, human_label, pairs in (
        rows.values_list("segment", "agent_label", "human_label").annotate(n=Sum("pairs"))
        .values_list("segment", "agent_label", "human_label", "n")
    ):
        confusion[(agent_label, human_label)] = confusion.get((agent_label, human_label), 0) + pairs
        tally = segments.setdefault(segment, [0, 0])
        tally[1] += pairs
        if agent_label == human_label:
            tally[0] += pairs

    hourly = []
    for hour, pairs, agreements in (
        rows.values_list("hour").annotate(n=Sum("pairs"), a=Sum("pairs", filter=Q(agent_label=F("human_label"))))
        .order_by("hour").values_list("hour", "n", "a")
    ):
        agreements = int(agreements or 0)
        hourly.append({"hour": hour.isoformat(), "pairs": int(pairs), "agreements": agreements, **_rate(agreements, pairs)})

    total = sum(confusion.values())
    agreements = sum(count for (agent_label, human_label), count in confusion.items() if agent_label == human_label)
    low, high = statistics.wilson_interval(agreements, total)

    flagged = statistics.flag_segments({name: (a, n) for name, (a, n) in segments.items()})
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

    recent = DiscrepantPair.objects.filter(rollout_id=rollout_id)
    if stage:
        recent = recent.filter(stage=stage)
    recent_rows = [
        {**row, "occurred_at": row["occurred_at"].isoformat()}
        for row in recent.order_by("-occurred_at", "-id").values(
            "request_key", "segment", "agent_label", "human_label", "occurred_at"
        )[:RECENT_DISCREPANT]
    ]
    return {
        "rollout": rollout_id,
        "stage": stage,
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


def shadow_panel_context(*, rollout) -> dict:
    """Context of telemetry/shadow_panel.html: {"rollout", "shadow": figures, charts, recent discrepancies}."""
    report = rollout_discrepancy(rollout_id=rollout.pk)
    bar = (
        RolloutStage.objects.filter(rollout_id=rollout.pk, mode=StageMode.SHADOW, agreement_bar__isnull=False)
        .values_list("agreement_bar", flat=True)
        .first()
    )
    has_pairs = report["pairs"] > 0
    low, high = report["interval"]
    return {
        "rollout": rollout,
        "shadow": {
            "report": report,
            "has_pairs": has_pairs,
            "agreement_bar": bar,
            "below_bar": has_pairs and bar is not None and low < bar,
            "low": low,
            "high": high,
            "computed_at": datetime.fromisoformat(report["computed_at"]) if report["computed_at"] else None,
            "recent": [
                {**row, "occurred_at": datetime.fromisoformat(row["occurred_at"])} for row in report["recent_discrepant"]
            ],
            "agreement_figure": charts.agreement_over_time(report["hourly"], bar=bar) if has_pairs else None,
            "confusion_figure": charts.confusion_heatmap(report["confusion"]) if has_pairs else None,
            "segments_figure": charts.segment_bars(report["segments"], bar=bar) if has_pairs else None,
        },
    }


def pair_detail(*, agent_id: int, request_key: str) -> dict | None:
    """Both halves of one pair (two rows by the idempotency key, not a scan), trace pretty-printed."""
    events = {event.kind: event for event in Event.objects.filter(agent_id=agent_id, request_key=request_key)
              .select_related("version")}
    if not events:
        return None
    agent, human = events.get("agent"), events.get("human")
    return {
        "agent_event": agent,
        "human_event": human,
        "agrees": None if not (agent and human) else agent.label == human.label,
        "trace_text": json.dumps(agent.trace, indent=2, sort_keys=True, ensure_ascii=False) if agent and agent.has_trace else "",
    }
