"""Schemas every app's API shares: the error body."""
from typing import Any

from ninja import Schema
from pydantic import ConfigDict


class ErrorOut(Schema):
    """Every error: `detail` (a sentence, or a list of problems), with the fields a caller acts on
    beside it (the unmet conditions of a refused promotion, the holder of a claim, the index of a
    bad result…)."""

    model_config = ConfigDict(extra="allow")
    detail: Any
