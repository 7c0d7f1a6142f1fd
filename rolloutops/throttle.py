"""A process-local window: act at most once per window, whatever the number of callers (the fold
and sealing requests sent after commits: telemetry/tasks.py, rolloutops/audit.py)."""
from __future__ import annotations

import threading
import time


class ProcessWindow:
    def __init__(self):
        self._lock = threading.Lock()
        self._until = float("-inf")

    def open(self, seconds: float) -> bool:
        """True, and the window shut for `seconds`, unless it is shut now."""
        now = time.monotonic()
        with self._lock:
            if now < self._until:
                return False
            self._until = now + seconds
            return True

    def reset(self) -> None:
        """Open the window again (the act it allowed did not happen)."""
        with self._lock:
            self._until = float("-inf")
