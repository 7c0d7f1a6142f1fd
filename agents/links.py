"""The rollouts of an agent, as the agents pages and API show them. The rollouts app owns them and
registers its reader at start-up (RolloutsConfig.ready), so agents, the lower layer, imports
nothing of it (docs/architecture.md, "Layers"). With no reader an agent has no rollouts."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class RolloutSummary:
    id: int
    state: str
    state_label: str
    stage: str
    traffic_percent: float
    version_id: int
    version: str
    created_at: datetime
    url: str


class RolloutReader(Protocol):
    def open_rollouts(self, *, agent_ids: list[int]) -> dict[int, RolloutSummary]:
        """Per agent, its rollout that holds (or may regain) traffic."""

    def recent_rollouts(self, *, agent_id: int, limit: int) -> list[RolloutSummary]:
        """The agent's rollouts, newest first."""


class _NoRollouts:
    def open_rollouts(self, *, agent_ids):
        return {}

    def recent_rollouts(self, *, agent_id, limit):
        return []


_reader: RolloutReader = _NoRollouts()


def register_rollout_reader(reader: RolloutReader) -> None:
    global _reader
    _reader = reader


def rollout_reader() -> RolloutReader:
    return _reader
