"""HTTP API of the escalations app (mounted under /api/v1/ by rolloutops.api)."""
from ninja import Router

router = Router(tags=["escalations"])
