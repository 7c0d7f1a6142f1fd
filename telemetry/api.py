"""HTTP API of the telemetry app (mounted under /api/v1/ by rolloutops.api)."""
from ninja import Router

router = Router(tags=["telemetry"])
