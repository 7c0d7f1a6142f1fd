"""Rollouts with a hand-written stage history, so telemetry tests need nothing from the rollouts services."""
from datetime import datetime, timedelta, timezone

from rollouts.models import Rollout, RolloutStage, StageMode, StageTransition
from telemetry.models import TrafficPeriod
from tests.factories import AgentVersionFactory

# A week ago, on the hour: inside the window of occurred_at that ingestion accepts (30 days back).
T0 = (datetime.now(timezone.utc) - timedelta(days=7)).replace(minute=0, second=0, microsecond=0)


def rollout_with_history(*, version=None, stages=(("staging", StageMode.OFF, 0), ("shadow", StageMode.SHADOW, 0)),
                         start=T0, step=timedelta(hours=1), ended_at=None, agreement_bar=0.9) -> Rollout:
    """A rollout that entered `stages` one after another, `step` apart from `start`; still open unless ended_at."""
    version = version or AgentVersionFactory()
    last_name, last_mode, last_traffic = stages[-1]
    rollout = Rollout.objects.create(
        agent=version.agent, version=version, stage_index=len(stages) - 1, stage_name=last_name, mode=last_mode,
        traffic_percent=last_traffic, stage_entered_at=start + step * (len(stages) - 1), created_at=start,
        state="rolled_back" if ended_at else "active", ended_at=ended_at,
    )
    incumbent = version.agent.production_version_id
    Rollout.objects.filter(pk=rollout.pk).update(incumbent_version_id=incumbent)
    for position, (name, mode, traffic) in enumerate(stages):
        RolloutStage.objects.create(rollout=rollout, position=position, name=name, mode=mode, traffic_percent=traffic,
                                    agreement_bar=agreement_bar if mode == StageMode.SHADOW else None)
        at = start + step * position
        StageTransition.objects.create(
            rollout=rollout, from_stage=stages[position - 1][0] if position else "", to_stage=name,
            from_state="active" if position else "", to_state="active", traffic_percent=traffic,
            action="promote" if position else "start", at=at,
        )
        # What rollouts.services writes on every transition: who handles the traffic from then on.
        TrafficPeriod.objects.create(agent=version.agent, starts_at=at, rollout=rollout, stage=name, mode=mode,
                                     active=True, traffic_percent=traffic if mode == StageMode.LIVE else 0,
                                     salt=rollout.salt, candidate_version=version, incumbent_version_id=incumbent,
                                     latency_limit_ms=3000 if mode == StageMode.LIVE else None)
    if ended_at:
        TrafficPeriod.objects.create(agent=version.agent, starts_at=ended_at, rollout=None, incumbent_version_id=incumbent)
    rollout.refresh_from_db()
    return rollout
