"""A model's drift alarms as checkpointed state: recent alarms, totals and last statistics.

Kept in the partition state so that ``driftd status`` and the metrics show the same alarms
after a restart, and a replay after a crash counts none twice. Bounded: the last ``keep``
alarms per stream and kind, one total per (version, stream, detector, kind) and one last
alarm per (version, stream, detector); versions are capped by the model's vocabulary.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from driftd.contracts.monitor import DriftDetected

KEEP_PER_STREAM = 100
"""Recent alarms kept per model, stream and kind."""

TotalKey = tuple[str, str, str, str]  # version, stream, detector, kind
LastKey = tuple[str, str, str]  # version, stream, detector


def _row(a: DriftDetected) -> list[Any]:
    return [a.version, a.stream, a.detector, a.kind, a.ts, a.statistic, a.threshold, a.reference]


class AlarmLog:
    """One model's alarms in one partition, in the order they fired."""

    def __init__(self, model: str, keep: int = KEEP_PER_STREAM) -> None:
        self.model = model
        self.keep = keep
        self.recent: dict[tuple[str, str], deque[DriftDetected]] = {}  # (stream, kind)
        self.totals: Counter[TotalKey] = Counter()
        self.last: dict[LastKey, DriftDetected] = {}  # each detector's latest alarm

    def record(self, alarms: Iterable[DriftDetected]) -> None:
        """Add alarms that just fired."""
        for a in alarms:
            self._remember(a)
            self.totals[(a.version, a.stream, a.detector, a.kind)] += 1
            self.last[(a.version, a.stream, a.detector)] = a

    def _remember(self, a: DriftDetected) -> None:
        q = self.recent.get((a.stream, a.kind))
        if q is None:
            q = self.recent[(a.stream, a.kind)] = deque(maxlen=self.keep)
        q.append(a)

    def state_dict(self) -> dict[str, Any]:
        """Plain lists: recent and last alarms as rows, totals as (key..., count)."""
        return {
            "recent": [_row(a) for q in self.recent.values() for a in q],
            "totals": [[*k, n] for k, n in sorted(self.totals.items())],
            "last": [_row(a) for a in self.last.values()],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from state_dict()."""
        self.recent = {}
        for r in state["recent"]:
            self._remember(self._alarm(r))
        self.totals = Counter(
            {(str(v), str(s), str(d), str(k)): int(n) for v, s, d, k, n in state["totals"]}
        )
        self.last = {}
        for r in state["last"]:
            a = self._alarm(r)
            self.last[(a.version, a.stream, a.detector)] = a

    def _alarm(self, row: list[Any]) -> DriftDetected:
        version, stream, detector, kind, ts, statistic, threshold = row[:7]
        reference = str(row[7]) if len(row) > 7 else ""  # rows saved before references
        return DriftDetected(
            self.model, str(version), str(stream), str(detector), str(kind),
            float(ts), float(statistic), float(threshold), reference,
        )  # fmt: skip


@dataclass
class Alarms:
    """Alarms over partitions, keyed with their model first."""

    recent: list[DriftDetected] = field(default_factory=list)  # in event time
    totals: Counter[tuple[str, str, str, str, str]] = field(default_factory=Counter)
    last: dict[tuple[str, str, str, str], DriftDetected] = field(default_factory=dict)


def merged(logs: Iterable[AlarmLog]) -> Alarms:
    """Recent alarms, totals per (model, version, stream, detector, kind), and per (model,
    version, stream, detector) the last alarm (the latest in event time over partitions).
    Copies each log's containers first: a scrape reads them while the loop writes."""
    out = Alarms()
    for log in logs:
        for q in list(log.recent.values()):
            out.recent.extend(list(q))
        for (v, s, d, k), n in dict(log.totals).items():
            out.totals[(log.model, v, s, d, k)] += n
        for (v, s, d), a in dict(log.last).items():
            key = (log.model, v, s, d)
            if key not in out.last or a.ts >= out.last[key].ts:
                out.last[key] = a
    out.recent.sort(key=lambda a: a.ts)
    return out
