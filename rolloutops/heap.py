"""A web process's start-up heap, frozen out of the garbage collector's scans (docs/scaling.md,
"Garbage collection")."""
from __future__ import annotations

import gc

from django.conf import settings
from django.urls import get_resolver


def freeze_start_up_heap() -> bool:
    """Load the URLconf (and with it every API module), then move every object alive into the
    collector's permanent generation: a full collection walks only what requests left behind,
    not the ~120,000 objects of Django, the apps and their libraries. `GC_FREEZE=0` leaves the
    collector as Python sets it. True if frozen."""
    if not settings.GC_FREEZE:
        return False

    get_resolver().url_patterns  # noqa: B018 (imported on first use otherwise: the first request's cost)
    gc.collect()
    gc.freeze()
    return True
