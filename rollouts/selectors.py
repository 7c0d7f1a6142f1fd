"""Reads of rollouts for pages and the API."""
from agents.models import Agent


def overview_rows() -> list[dict]:
    return [{"agent": agent} for agent in Agent.objects.all()]
