"""The leader's merge: partition reports in, the model's whole stream out, in event-time order.

Every partition reports its buckets (``summaries``) with each checkpoint, with its watermark
(the event time below which it expects nothing more) and when it last consumed an event. The
brain holds the buckets of all partitions until the global watermark passes them, that is the
minimum of the partitions' watermarks, leaving out partitions idle for ``idle_s`` (and, for
``idle_s`` after the leader started, partitions it expects but has not heard from; with every
partition idle, everything held goes out). It then
emits them in bucket order: each bucket's counts are added to the per-version totals the
rollout reads, each detector is fed its stream's values in (event time, value) order, and the
event clock moves to the bucket's end. A sequential detector thus sees the model's whole
stream, in one order that does not depend on the partitioning, and its documented false-alarm
rate holds as on a single stream.

Values reported for a bucket already emitted (an event later than its partition's watermark
promised) are emitted with the next bucket and counted as late. Pure: no I/O, no clock (the
caller passes the wall time for idleness); state round-trips through ``to_blob``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from driftd.config import LeaderSettings, ModelSettings
from driftd.contracts.monitor import DriftDetected
from driftd.daemon import state_codec
from driftd.daemon.abc import Report
from driftd.daemon.alarm_log import AlarmLog, Alarms, merged
from driftd.daemon.checks import ModelChecks, sample_rows
from driftd.daemon.columns import ModelSchema
from driftd.daemon.detector_monitor import DetectorMonitor
from driftd.daemon.performance import ModelPerformance
from driftd.daemon.sample import Sample
from driftd.daemon.summaries import BucketSummary, decode
from driftd.rollout.counts import FIELDS, Totals, VersionCounts, totals

STATE_KIND = "driftd.brain"
STATE_VERSION = 1
NEVER = -math.inf
LABELED = FIELDS.index("labeled")
REQUESTS = FIELDS.index("requests")


@dataclass
class PartitionView:
    """What the leader knows of one partition: its watermark, when it last consumed an event
    (wall time) and the last report sequence merged."""

    watermark: float = NEVER
    active_at: float = NEVER
    seq: int = 0


class Brain:
    """Merges partition reports and runs the detectors and counts on the merged stream."""

    def __init__(self, models: Mapping[str, ModelSettings], settings: LeaderSettings) -> None:
        self.settings = settings
        self.tasks = {name: m.task for name, m in models.items()}
        self.detectors = {
            name: DetectorMonitor(name, ModelSchema(name, m), m)
            for name, m in models.items()
            if m.detectors
        }
        self.checks = {name: ModelChecks(name, m) for name, m in models.items() if m.checks}
        self.performance = {
            name: ModelPerformance(name, m) for name, m in models.items() if m.performance
        }
        self.sample_rows = {name: sample_rows(m) for name, m in models.items()}
        self.counts = {name: VersionCounts(m.task) for name, m in models.items()}
        self.alarm_logs = {name: AlarmLog(name) for name in models}
        self.pending: dict[str, dict[int, BucketSummary]] = {name: {} for name in models}
        self.partitions: dict[int, PartitionView] = {}
        self.next_bucket: int | None = None  # every bucket below it was emitted
        self.late_values = 0
        self.merged_values = 0
        self.new_labeled: dict[str, int] = {}  # labeled rows emitted since last drained

    # -- reports -------------------------------------------------------------------------
    def absorb(self, reports: Iterable[Report]) -> None:
        """Merge reports (each at most once: a sequence already merged is skipped)."""
        for r in sorted(reports, key=lambda r: (r.partition, r.seq)):
            view = self.partitions.setdefault(r.partition, PartitionView())
            if r.seq <= view.seq:
                continue
            view.seq = r.seq
            view.watermark = max(view.watermark, r.watermark if abs(r.watermark) < 1e18 else NEVER)
            view.active_at = max(view.active_at, r.active_at)
            for model, b, summary in decode(r.data, self.tasks):
                n = len(summary)
                self.merged_values += n
                if self.next_bucket is not None and b < self.next_bucket:
                    self.late_values += n
                held = self.pending[model].get(b)
                if held is None:
                    self.pending[model][b] = summary
                else:
                    held.merge(summary)

    def watermark(self, now: float, expected: Iterable[int] = (), waited: bool = True) -> float:
        """The global watermark: the least watermark of the partitions that are not idle.

        A partition is idle when it has consumed nothing for ``idle_s`` (wall time). An
        ``expected`` partition not heard from yet holds the watermark back until ``waited``
        (the leader has waited ``idle_s`` for it). With every partition idle (the traffic
        stopped) nothing more is coming: the watermark is infinite and every held bucket goes
        out, so the tail of the stream is judged too; what arrives later is late.
        """
        idle_s = self.settings.idle_s
        if not waited and any(p not in self.partitions for p in expected):
            return NEVER
        live = [v.watermark for v in self.partitions.values() if now - v.active_at <= idle_s]
        if live:
            return min(live)
        return math.inf if self.partitions else NEVER

    # -- emitting ------------------------------------------------------------------------
    def advance(
        self, watermark: float, on_bucket: Callable[[float], object] | None = None
    ) -> list[DriftDetected]:
        """Emit every held bucket that ends at or before ``watermark``, in bucket order; call
        ``on_bucket(end)`` after each; return the alarms in the order they fired."""
        width = self.settings.bucket_s
        held = sorted({b for buckets in self.pending.values() for b in buckets})
        out: list[DriftDetected] = []
        for b in held:
            end = (b + 1) * width
            if end > watermark:
                break
            out += self._emit(b)
            self._passed(b + 1)
            if on_bucket is not None:
                on_bucket(self.clock())
        if math.isfinite(watermark) and abs(watermark) < 1e18:
            self._passed(math.floor(watermark / width))  # buckets below it are complete
        out += self._close_windows(self.clock())  # a window is tested once it is complete
        return out

    def _close_windows(self, clock: float) -> list[DriftDetected]:
        """Test the windows of every check that end at or before ``clock``."""
        out: list[DriftDetected] = []
        for model in sorted(set(self.checks) | set(self.performance)):
            got = self._windows(model, clock)
            self.alarm_logs[model].record(got)
            out += got
        return out

    def _windows(self, model: str, clock: float) -> list[DriftDetected]:
        checks, perf = self.checks.get(model), self.performance.get(model)
        got = checks.advance(clock) if checks is not None else []
        return got + (perf.advance(clock) if perf is not None else [])

    def _passed(self, bucket: int) -> None:
        if self.next_bucket is None or bucket > self.next_bucket:
            self.next_bucket = bucket

    def _emit(self, b: int) -> list[DriftDetected]:
        fired: list[DriftDetected] = []
        for model in sorted(self.pending):
            summary = self.pending[model].pop(b, None)
            if summary is None:
                continue
            self.counts[model].merge(summary.counts)
            labeled = int(sum(c[LABELED] for c in summary.counts.counts.values()))
            if labeled:
                self.new_labeled[model] = self.new_labeled.get(model, 0) + labeled
            checks, perf = self.checks.get(model), self.performance.get(model)
            if checks is not None or perf is not None:
                # the sample of the whole bucket, as one partition would have drawn it
                summary.trim(self.sample_rows[model])
                if checks is not None:
                    keys, ts, rows = summary.rows(checks.columns)
                    checks.add(Sample(keys, ts, rows), summary.labels)
                    accepted = sum(float(c[REQUESTS]) for c in summary.counts.counts.values())
                    checks.add_counts(b * self.settings.bucket_s, summary.type_errors, accepted)
                if perf is not None:
                    perf.add(summary)
                closed = self._windows(model, float(b * self.settings.bucket_s))
                self.alarm_logs[model].record(closed)
                fired += closed
            det = self.detectors.get(model)
            if det is None:
                continue
            got: list[DriftDetected] = []
            for i, spec in enumerate(det.specs):
                versions = sorted({v for v, s in summary.streams() if s == spec.stream})
                for version in versions:
                    ts, vals = summary.ordered(version, spec.stream)
                    got += det.feed(version, i, ts, vals)
            got.sort(key=lambda a: a.ts)  # stable: ties keep the spec and version order
            self.alarm_logs[model].record(got)
            fired += got
        return fired

    def set_champion(self, model: str, label: str, rows: Sample) -> list[int]:
        """The champion's training rows as the reference of the model's ``champion`` checks
        (see ``ModelChecks.set_champion``); the indices of the checks that switched."""
        checks = self.checks.get(model)
        return [] if checks is None else checks.set_champion(label, rows)

    def drain_labeled(self) -> dict[str, int]:
        """Labeled rows per model in the buckets emitted since the last call (over every
        partition: what the retrain policy's ``min_new_rows`` counts)."""
        out, self.new_labeled = self.new_labeled, {}
        return out

    def drain_evidence(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        """The evidence of the window checks', performance estimators' and detectors' drift
        alarms since the last call, by (model, version, stream), the latest per stream: what
        the leader stores with incidents."""
        out: dict[tuple[str, str, str], dict[str, Any]] = {}
        sources: list[tuple[str, ModelChecks | ModelPerformance | DetectorMonitor]] = [
            *self.checks.items(),
            *self.performance.items(),
            *self.detectors.items(),
        ]
        for model, source in sorted(sources, key=lambda kv: kv[0]):
            got = source.drain_evidence()
            for version, stream, _ts in sorted(got, key=lambda k: k[2]):
                out[(model, version, stream)] = got[(version, stream, _ts)]
        return out

    def clock(self) -> float:
        """The event clock: the end of the last emitted bucket (0.0 before any)."""
        if self.next_bucket is None:
            return 0.0
        return float(self.next_bucket * self.settings.bucket_s)

    def held_buckets(self) -> int:
        """Buckets merged and waiting for the watermark, over models."""
        return sum(len(b) for b in self.pending.values())

    # -- reading ---------------------------------------------------------------------------
    def version_total(self, model: str, version: str) -> Totals:
        """One version's counts over every emitted bucket (canary evidence)."""
        c = self.counts.get(model)
        return totals([c], version) if c is not None else Totals()

    def alarms(self) -> Alarms:
        """The alarms kept and counted, over models."""
        return merged(self.alarm_logs.values())

    # -- state -----------------------------------------------------------------------------
    def to_blob(self) -> bytes:
        """Everything the next leader needs to go on exactly where this one stopped."""
        return state_codec.dumps(
            STATE_KIND,
            STATE_VERSION,
            {
                "bucket_s": self.settings.bucket_s,
                "next_bucket": self.next_bucket,
                "late_values": self.late_values,
                "merged_values": self.merged_values,
                "partitions": [
                    [p, v.watermark, v.active_at, v.seq] for p, v in sorted(self.partitions.items())
                ],
                "pending": {
                    m: [[b, s.state_dict()] for b, s in sorted(bs.items())]
                    for m, bs in self.pending.items()
                },
                "counts": {m: c.state_dict() for m, c in self.counts.items()},
                "detectors": {m: d.state_dict() for m, d in self.detectors.items()},
                "checks": {m: c.state_dict() for m, c in self.checks.items()},
                "performance": {m: p.state_dict() for m, p in self.performance.items()},
                "alarms": {m: a.state_dict() for m, a in self.alarm_logs.items()},
            },
        )

    def load_blob(self, blob: bytes) -> None:
        """Restore ``to_blob``; models no longer configured are dropped, new ones start empty.
        A changed ``bucket_s`` keeps the detectors and counts and re-buckets nothing: held
        buckets are emitted by their old end times."""
        s: dict[str, Any] = state_codec.loads(blob, STATE_KIND, STATE_VERSION)
        nb = s["next_bucket"]
        if nb is not None and s["bucket_s"] != self.settings.bucket_s:
            nb = math.floor(nb * s["bucket_s"] / self.settings.bucket_s)
        self.next_bucket = None if nb is None else int(nb)
        self.late_values = int(s["late_values"])
        self.merged_values = int(s["merged_values"])
        self.partitions = {
            int(p): PartitionView(float(w), float(a), int(q)) for p, w, a, q in s["partitions"]
        }
        for m, bs in s["pending"].items():
            if m in self.pending:
                task = self.tasks[m]
                self.pending[m] = {int(b): BucketSummary.from_state(task, st) for b, st in bs}
        for m, c in s["counts"].items():
            if m in self.counts:
                self.counts[m].load_state_dict(c)
        for m, d in s["detectors"].items():
            if m in self.detectors:
                self.detectors[m].load_state_dict(d)
        for m, c in s.get("checks", {}).items():
            if m in self.checks:
                self.checks[m].load_state_dict(c)
        for m, p in s.get("performance", {}).items():
            if m in self.performance:
                self.performance[m].load_state_dict(p)
        for m, a in s["alarms"].items():
            if m in self.alarm_logs:
                self.alarm_logs[m].load_state_dict(a)
