"""rolloutops client for agent runtimes: in-process routing, non-blocking telemetry, escalations.

    from rolloutops_client import Client
    client = Client("https://rolloutops.example.com", token)
    route = client.route("claims-triage", request_id)
"""
from __future__ import annotations

__version__ = "0.1.0"

from .client import Client, ClientStats, Ticket  # noqa: E402
from .decision import Decision  # noqa: E402
from .errors import (  # noqa: E402
    ApiError, Forbidden, NotFound, Rejected, RolloutOpsError, ServerError, Unauthorized, Unreachable,
)
from .events import TelemetryStats  # noqa: E402
from .keys import request_key  # noqa: E402
from .routing import BUCKETS, FailSafeReason, Route, Snapshot, SnapshotError, bucket, goes_to_candidate  # noqa: E402

__all__ = [
    "BUCKETS", "ApiError", "Client", "ClientStats", "Decision", "FailSafeReason", "Forbidden", "NotFound", "Rejected",
    "RolloutOpsError", "Route", "ServerError", "Snapshot", "SnapshotError", "TelemetryStats", "Ticket", "Unauthorized",
    "Unreachable", "__version__", "bucket", "goes_to_candidate", "request_key",
]
