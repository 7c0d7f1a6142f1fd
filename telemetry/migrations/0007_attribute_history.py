"""Versions and arms for data written before them (docs/architecture.md, "Events"): each agent's
incumbent and lineage from its completed rollouts, each rollout's incumbent, the routing periods
from the rollouts' histories, each event's arm, and every event queued again so the fold rebuilds
the rollups per arm. Self-contained (historical models, the bucket rule copied) so that later
changes to the app's code cannot change what this migration does."""
import hashlib

from django.db import migrations

OPEN = ("active", "paused")


def _bucket(salt, key):
    return int.from_bytes(hashlib.sha256(f"{salt}\x1f{key}".encode()).digest()[:8], "big") % 10_000


def forwards(apps, schema_editor):
    Agent = apps.get_model("agents", "Agent")
    ProductionChange = apps.get_model("agents", "ProductionChange")
    Rollout = apps.get_model("rollouts", "Rollout")
    RolloutStage = apps.get_model("rollouts", "RolloutStage")
    StageTransition = apps.get_model("rollouts", "StageTransition")
    TrafficPeriod = apps.get_model("telemetry", "TrafficPeriod")
    Event = apps.get_model("telemetry", "Event")
    UnfoldedEvent = apps.get_model("telemetry", "UnfoldedEvent")
    for name in ("StageHour", "LatencyHour", "PairHour", "DiscrepantPair", "RolloutFold"):
        apps.get_model("telemetry", name).objects.all().delete()

    for agent in Agent.objects.all():
        rollouts = list(Rollout.objects.filter(agent=agent).order_by("created_at", "id"))
        completed = sorted((r for r in rollouts if r.state == "completed" and r.ended_at), key=lambda r: r.ended_at)
        production = None
        for r in completed:
            ProductionChange.objects.create(agent=agent, from_version_id=production, to_version_id=r.version_id,
                                            kind="completed", rollout_id=r.pk, at=r.ended_at,
                                            reason=f"rollout #{r.pk} completed")
            production = r.version_id
        if completed:
            Agent.objects.filter(pk=agent.pk).update(production_version_id=production, production_since=completed[-1].ended_at)

        periods = []
        for r in rollouts:
            before = [c for c in completed if c.ended_at <= r.created_at]
            incumbent = before[-1].version_id if before else None
            Rollout.objects.filter(pk=r.pk).update(incumbent_version_id=incumbent)
            stages = {s.name: s for s in RolloutStage.objects.filter(rollout=r)}
            for t in StageTransition.objects.filter(rollout=r).order_by("at", "id"):
                if t.to_state in OPEN:
                    stage = stages.get(t.to_stage)
                    limit = (stage.guardrails or {}).get("max_p95_latency_ms") if stage else None
                    periods.append(TrafficPeriod(
                        agent=agent, starts_at=t.at, rollout_id=r.pk, stage=t.to_stage,
                        mode=stage.mode if stage else "", active=t.to_state == "active",
                        traffic_percent=t.traffic_percent if t.to_state == "active" and stage and stage.mode == "live" else 0,
                        salt=r.salt, candidate_version_id=r.version_id, incumbent_version_id=incumbent,
                        latency_limit_ms=float(limit) if limit is not None else None))
                elif t.to_state in ("completed", "rolled_back"):
                    periods.append(TrafficPeriod(
                        agent=agent, starts_at=t.at, rollout_id=None,
                        incumbent_version_id=r.version_id if t.to_state == "completed" else incumbent))
        periods.sort(key=lambda p: p.starts_at)
        TrafficPeriod.objects.bulk_create(periods)
        starts = [p.starts_at for p in periods]

        from bisect import bisect_right

        def period_at(moment):
            i = bisect_right(starts, moment) - 1
            return periods[i] if i >= 0 else None

        changed = []
        for e in Event.objects.filter(agent=agent).iterator(chunk_size=2000):
            p = period_at(e.occurred_at)
            rollout_id = p.rollout_id if p else None
            incumbent = p.incumbent_version_id if p else None
            acting = incumbent
            if p and p.rollout_id and p.active and p.mode == "live" and _bucket(p.salt, e.request_key) < round(p.traffic_percent * 100):
                acting = p.candidate_version_id
            if e.kind == "human":
                e.version_id, e.arm, e.slow = None, ("control" if acting is None else "label"), None
            else:
                if e.version_id is None:
                    e.version_id = acting
                if rollout_id and e.version_id == p.candidate_version_id:
                    e.arm = "candidate"
                elif e.version_id == incumbent:
                    e.arm = "control"
                else:
                    e.arm = "other"
                e.slow = (e.latency_ms > p.latency_limit_ms) if (p and e.latency_ms is not None and p.latency_limit_ms is not None) else None
            e.rollout_id, e.stage = rollout_id, (p.stage if p and rollout_id else "")
            changed.append(e)
            if len(changed) >= 2000:
                Event.objects.bulk_update(changed, ["version", "arm", "slow", "rollout", "stage"])
                changed = []
        if changed:
            Event.objects.bulk_update(changed, ["version", "arm", "slow", "rollout", "stage"])

    UnfoldedEvent.objects.all().delete()
    queued = [UnfoldedEvent(event_id=pk, rollout_id=rollout_id)
              for pk, rollout_id in Event.objects.filter(rollout__isnull=False).values_list("id", "rollout_id")]
    UnfoldedEvent.objects.bulk_create(queued, batch_size=5000)


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0006_arms_and_traffic_periods"),
        ("agents", "0003_production_lineage"),
        ("rollouts", "0004_incumbent_and_error_budget"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
