"""Warnings that a full join store lost predictions, rate-limited per model."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from driftd.config import JoinSettings

# The runner's logger, as before this warning moved here: log filters key on it.
log = logging.getLogger("driftd.runner")
OVERFLOW_LOG_S = 30.0


class OverflowWarnings:
    """Logs predictions lost to the overflow policy, at most every OVERFLOW_LOG_S per model."""

    def __init__(self, join: JoinSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.join = join
        self.clock = clock
        self._lost: Counter[str] = Counter()  # lost since the last warning, per model
        self._logged: dict[str, float] = {}

    def note(self, deltas: dict[str, Counter[str]]) -> None:
        """Add one chunk's join counter deltas; warn for each model that lost data."""
        for model, d in deltas.items():
            lost = d.get("evicted", 0) + d.get("dropped", 0)
            if not lost:
                continue
            self._lost[model] += lost
            now = self.clock()
            if now - self._logged.get(model, -OVERFLOW_LOG_S) >= OVERFLOW_LOG_S:
                log.warning(
                    "join store full: predictions lost to the overflow policy",
                    extra={
                        "model": model,
                        "lost": self._lost[model],
                        "policy": self.join.overflow,
                        "max_pending": self.join.max_pending,
                    },
                )
                self._logged[model] = now
                self._lost[model] = 0
