"""The routing timeline the rollouts app writes and ingestion reads (docs/architecture.md, "Events"):
who handled an agent's traffic from when. Rollouts writes a period in the transaction of every
change of routing; its routing cache keys on the timeline's generation. Telemetry imports nothing
of rollouts to attribute events: this table is the interface between them."""
from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Max

from .models import TrafficPeriod

MODE_LIVE = "live"


def traffic_period_record(*, agent_id: int, at: datetime, rollout_id: int | None, stage: str = "", mode: str = "",
                          active: bool = False, traffic_percent: float = 0.0, salt: str = "",
                          candidate_version_id: int | None = None, incumbent_version_id: int | None = None,
                          latency_limit_ms: float | None = None) -> TrafficPeriod:
    """Routing changed at `at`: record who handles the agent's traffic from then on. Call it in the
    transaction of the change, so an event is never attributed to routing that did not commit."""
    return TrafficPeriod.objects.create(
        agent_id=agent_id, starts_at=at, rollout_id=rollout_id, stage=stage, mode=mode, active=active,
        traffic_percent=traffic_percent if active and mode == MODE_LIVE else 0.0, salt=salt,
        candidate_version_id=candidate_version_id, incumbent_version_id=incumbent_version_id,
        latency_limit_ms=latency_limit_ms,
    )


def routing_generation() -> tuple[int, int]:
    """Moves whenever routing changes anywhere: the newest period's id, and the count (two changes
    committing out of id order leave the newest id alone but not the count). Periods are few (one
    per transition), so the count is an index-only scan of a small table."""
    row = TrafficPeriod.objects.aggregate(g=Max("id"), n=Count("id"))
    return (row["g"] or 0, row["n"])
