"""Window checks on the leader's merged stream: event-time windows against a reference.

The brain hands each emitted bucket's feature rows (every version pooled) to a model's
checks. A check keeps a bounded uniform sample of each open window: the ``sample_rows``
rows with the smallest (event-id hash, event time), which is the same sample whatever the
partitioning (the smallest of a union is the smallest of the parts' smallest). When the
event clock passes a window's end, the window is tested against the reference
(``check_stats``) and each feature that fails becomes a ``DriftDetected`` at the window's
end, naming the reference it was measured against.

References: ``pinned`` with ``reference_start``/``reference_end`` is the sample of that
event-time range, and only windows that start at or after its end are tested; ``pinned``
without a range is the first window with ``min_rows`` rows (not tested itself); ``rolling``
is the window just before the one tested. Window bounds are multiples of the slide (the
window length for tumbling windows) in event time. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from driftd.config import ModelSettings, WindowCheckSettings
from driftd.contracts.monitor import DriftDetected
from driftd.daemon.check_stats import ROW, evaluate

F64 = npt.NDArray[np.float64]
U32 = npt.NDArray[np.uint32]
ALL_VERSIONS = "*"  # the version of a check's alarms: checks pool every version
STATE_VERSION = 1


def check_features(check: WindowCheckSettings, features: Mapping[str, str]) -> list[str]:
    """The features a check tests: those it names, or every feature of the kinds it applies
    to (out_of_range and multivariate: numeric; unseen: categorical; others: all)."""
    if check.features:
        return list(check.features)
    want = {"out_of_range": "numeric", "multivariate": "numeric", "unseen": "categorical"}
    kind = want.get(check.check)
    return [n for n, k in features.items() if kind is None or k == kind]


def check_columns(model: ModelSettings) -> list[str]:
    """Every feature some check of the model reads, in declaration order."""
    used = {n for c in model.checks for n in check_features(c, model.features)}
    return [n for n in model.features if n in used]


@dataclass
class Sample:
    """Rows of feature values with their event-id hashes and times, capped to a uniform
    sample: the rows with the smallest (hash, time)."""

    keys: U32
    ts: F64
    values: F64  # (rows, features)

    @classmethod
    def empty(cls, width: int) -> Sample:
        return cls(np.empty(0, np.uint32), np.empty(0), np.empty((0, width)))

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, other: Sample, cap: int) -> Sample:
        """The union with ``other``, capped to ``cap`` rows by (hash, time)."""
        keys = np.concatenate([self.keys, other.keys])
        ts = np.concatenate([self.ts, other.ts])
        values = np.concatenate([self.values, other.values])
        if len(keys) > cap:
            keep = np.lexsort((ts, keys))[:cap]
            keys, ts, values = keys[keep], ts[keep], values[keep]
        return Sample(keys, ts, values)

    def take(self, mask: npt.NDArray[np.bool_]) -> Sample:
        return Sample(self.keys[mask], self.ts[mask], self.values[mask])

    def state(self) -> list[Any]:
        return [self.keys, self.ts, self.values]

    @classmethod
    def from_state(cls, s: Sequence[Any], width: int) -> Sample:
        return cls(
            np.asarray(s[0], np.uint32),
            np.asarray(s[1], np.float64),
            np.asarray(s[2], np.float64).reshape(-1, width),
        )


class WindowCheck:
    """One configured check of one model: its open windows, its reference, its alarms."""

    def __init__(
        self, model: str, index: int, check: WindowCheckSettings, features: Mapping[str, str]
    ) -> None:
        self.model, self.index, self.s = model, index, check
        self.names = check_features(check, features)
        self.categorical = [features[n] == "categorical" for n in self.names]
        self.slide = check.slide_s or check.window_s
        self.detector = "window:" + (
            check.check if check.check != "drift" else f"drift:{check.test}"
        )
        self.open: dict[int, Sample] = {}  # window index (start = index * slide) -> sample
        self.closed: dict[int, Sample] = {}  # recent closed windows (a rolling reference)
        self.reference: Sample | None = None
        self.reference_label = ""
        self.last: list[Any] = []  # the last window's outcomes, for status and metrics
        if check.reference_start is not None and check.reference_end is not None:
            self.reference = Sample.empty(len(self.names))
            self.reference_label = f"pinned:[{check.reference_start:g},{check.reference_end:g})"

    # -- feeding -------------------------------------------------------------------------
    def add(self, rows: Sample) -> None:
        """Add rows (their values in the check's feature order) to every window they fall in,
        and to a pinned reference range."""
        s = self.s
        if not len(rows):
            return
        if s.reference_start is not None and s.reference_end is not None:
            inside = (rows.ts >= s.reference_start) & (rows.ts < s.reference_end)
            if inside.any():
                assert self.reference is not None
                self.reference = self.reference.add(rows.take(inside), s.sample_rows)
        last = np.floor(rows.ts / self.slide).astype(np.int64)
        for back in range(math.ceil(s.window_s / self.slide)):
            idx = last - back
            inside = rows.ts < idx * self.slide + s.window_s
            for w in np.unique(idx[inside]).tolist():
                part = rows.take(inside & (idx == w))
                held = self.open.get(w)
                self.open[w] = part if held is None else held.add(part, s.sample_rows)
                if len(self.open[w]) > s.sample_rows:
                    self.open[w] = Sample.empty(len(self.names)).add(self.open[w], s.sample_rows)

    def advance(self, clock: float) -> list[DriftDetected]:
        """Test every open window that ends at or before ``clock``, in start order."""
        out: list[DriftDetected] = []
        for w in sorted(self.open):
            end = w * self.slide + self.s.window_s
            if end > clock:
                break
            out += self._close(w, self.open.pop(w), end)
        return out

    # -- closing -------------------------------------------------------------------------
    def _close(self, w: int, sample: Sample, end: float) -> list[DriftDetected]:
        s = self.s
        start = w * self.slide
        ref, label = self._reference(w, start)
        if s.reference == "rolling":
            self.closed[w] = sample
            horizon = w - math.ceil(s.window_s / self.slide)
            self.closed = {k: v for k, v in self.closed.items() if k >= horizon}
        if ref is None:
            if s.reference == "pinned" and s.reference_end is None and len(sample) >= s.min_rows:
                self.reference = sample  # the first window with data is the reference
                self.reference_label = f"pinned:[{start:g},{end:g})"
            return []
        outcomes = evaluate(s, self.names, self.categorical, ref.values, sample.values)
        self.last = [[o.feature, o.p_adjusted, o.statistic, o.threshold, o.drift] for o in outcomes]
        return [
            DriftDetected(
                model=self.model,
                version=ALL_VERSIONS,
                stream="features" if o.feature == ROW else f"feature:{o.feature}",
                detector=self.detector,
                kind="drift",
                ts=end,
                statistic=o.statistic,
                threshold=o.threshold,
                reference=label,
            )
            for o in outcomes
            if o.drift
        ]

    def _reference(self, w: int, start: float) -> tuple[Sample | None, str]:
        s = self.s
        if s.reference == "rolling":
            back = w - math.ceil(s.window_s / self.slide)  # the window ending at this start
            ref = self.closed.get(back)
            label = f"rolling:[{back * self.slide:g},{start:g})"
            return (ref, label) if ref is not None and len(ref) >= s.min_rows else (None, label)
        if s.reference_end is not None and start < s.reference_end:
            return None, self.reference_label  # the window overlaps the reference range
        return self.reference, self.reference_label

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "spec": self.s.model_dump(mode="json"),
            "open": [[w, x.state()] for w, x in sorted(self.open.items())],
            "closed": [[w, x.state()] for w, x in sorted(self.closed.items())],
            "reference": None if self.reference is None else self.reference.state(),
            "reference_label": self.reference_label,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore; a check whose spec changed since the checkpoint starts over."""
        if state["spec"] != self.s.model_dump(mode="json"):
            return
        k = len(self.names)
        self.open = {int(w): Sample.from_state(x, k) for w, x in state["open"]}
        self.closed = {int(w): Sample.from_state(x, k) for w, x in state["closed"]}
        ref = state["reference"]
        self.reference = None if ref is None else Sample.from_state(ref, k)
        self.reference_label = str(state["reference_label"])


class ModelChecks:
    """Every window check of one model, fed the rows the brain emits."""

    def __init__(self, model: str, settings: ModelSettings) -> None:
        self.model = model
        self.columns = check_columns(settings)
        self.checks = [
            WindowCheck(model, i, c, settings.features) for i, c in enumerate(settings.checks)
        ]
        self._cols = [[self.columns.index(n) for n in c.names] for c in self.checks]
        self.cap = max((c.sample_rows for c in settings.checks), default=0)

    def add(self, rows: Sample) -> None:
        """Rows with values in ``self.columns`` order."""
        for check, cols in zip(self.checks, self._cols, strict=True):
            check.add(Sample(rows.keys, rows.ts, rows.values[:, cols]))

    def advance(self, clock: float) -> list[DriftDetected]:
        out: list[DriftDetected] = []
        for c in self.checks:
            out += c.advance(clock)
        out.sort(key=lambda a: a.ts)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"v": STATE_VERSION, "checks": [c.state_dict() for c in self.checks]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for c, st in zip(self.checks, state.get("checks", []), strict=False):
            c.load_state_dict(st)
