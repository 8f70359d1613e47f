"""Event-time screening: a timestamp that would corrupt the join's watermark is refused.

The watermark follows the largest event times seen, so one valid event stamped far in the
future (a label at T0 + 1e7 s) would move it ahead and expire every pending prediction. Each
event of a model is judged in arrival order, before it reaches the join store:

- ``ts < min_ts`` (a zero or unset clock): dead-lettered as ``invalid_value``.
- Following a live source, ``ts > now + max_future_s`` on the injected wall clock:
  dead-lettered as ``future_timestamp`` (no real event comes from the future).
- ``ts`` more than ``max_future_s`` ahead of the stream's time (the largest time accepted so
  far, predictions and labels together): ``future_timestamp``, unless the stream really
  jumped: a live event within ``max_future_s`` of the wall clock is current and accepted,
  and ``RESYNC_EVENTS`` such events in a row (distinct ids, within ``max_future_s`` of each
  other) are taken as a gap in the stream: the last of them is accepted and time moves on.
  The ones before it stay in the dead-letter sink, from where they can be replayed.

A fresh partition has no time of its own yet: its first event sets it, bounded only by the
wall clock when one is given (a replayed file's first line is taken on trust). Verdicts do not
depend on how events are batched; the resync state is checkpointed with the join store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from driftd.contracts.columns import F64
from driftd.contracts.events import DeadLetterReason

RESYNC_EVENTS = 3

Rejection = tuple[int, DeadLetterReason, str]


class TimeGuard:
    """Judges event times against the stream's time and the wall clock; keeps resync state."""

    def __init__(self, max_future_s: float, min_ts: float) -> None:
        self.max_future = max_future_s
        self.min_ts = min_ts
        self._run_ts = math.nan  # the first of the events ahead of the stream, in a row
        self._run_ids: list[str] = []

    def screen(
        self, ts: F64, ids: Sequence[str], progress: float, now: float | None
    ) -> list[Rejection]:
        """(index, reason, detail) of each refused event; ``progress`` is the stream's time
        (-inf when it has none), ``now`` the wall clock when following a live source."""
        old = ts < self.min_ts
        fresh = np.flatnonzero(~old)
        t = ts[fresh]
        f = self.max_future
        if not old.any() and len(t):
            prev = np.maximum.accumulate(np.concatenate(([progress], t[:-1])))
            ahead = (t > prev + f) & (prev > -np.inf)
            if now is not None:
                ahead = (ahead & (t < now - f)) | (t > now + f)
            if not ahead.any():
                self._end_run()
                return []
        out: list[Rejection] = [
            (i, "invalid_value", f"ts {ts[i]!r} is before join.min_ts = {self.min_ts:g}")
            for i in np.flatnonzero(old).tolist()
        ]
        for i, x in zip(fresh.tolist(), t.tolist(), strict=True):
            refused = self._judge(x, ids[i], progress, now)
            if refused is None:
                progress = max(progress, x)
            else:
                out.append((i, "future_timestamp", refused))
        out.sort(key=lambda r: r[0])
        return out

    def _judge(self, t: float, id_: str, progress: float, now: float | None) -> str | None:
        """None when the event is accepted, else why it is not."""
        f = self.max_future
        if now is not None and t > now + f:
            return (
                f"ts {t!r} is {t - now:.0f} s ahead of the wall clock {now:.0f} "
                f"(join.max_future_s = {f:g})"
            )
        if progress == -np.inf or t <= progress + f or (now is not None and t >= now - f):
            self._end_run()
            return None
        if self._run_ids and abs(t - self._run_ts) <= f and id_ not in self._run_ids:
            self._run_ids.append(id_)
        else:
            self._run_ts, self._run_ids = t, [id_]
        if len(self._run_ids) >= RESYNC_EVENTS:
            self._end_run()
            return None
        return (
            f"ts {t!r} is {t - progress:.0f} s ahead of the stream's time {progress!r} "
            f"(join.max_future_s = {f:g}); {RESYNC_EVENTS} such events in a row are taken "
            "as a gap in the stream"
        )

    def _end_run(self) -> None:
        if self._run_ids:
            self._run_ts, self._run_ids = math.nan, []

    def state_dict(self) -> dict[str, Any]:
        """The run of events ahead of the stream, if one is under way."""
        return {"run_ts": self._run_ts, "run_ids": list(self._run_ids)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from state_dict()."""
        self._run_ts = float(state["run_ts"])
        self._run_ids = [str(i) for i in state["run_ids"]]
