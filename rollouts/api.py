"""HTTP API of the rollouts app (mounted under /api/v1/ by rolloutops.api)."""
from ninja import Router

router = Router(tags=["rollouts"])
