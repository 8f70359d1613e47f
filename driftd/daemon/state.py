"""Per-partition state: what one partition's checkpoint holds, model by model.

A partition's join store, vocabularies, monitors, alarms, counters and offsets live together so
that they move together on a rebalance and are checkpointed together (``to_blob``, a versioned
blob). ``counts()`` copies the counters into plain dataclasses, for readers (metrics
collectors) that run while the loop writes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from driftd.config import JoinSettings
from driftd.contracts.columns import Vocab
from driftd.contracts.monitor import Monitor
from driftd.daemon import state_codec
from driftd.daemon.abc import Offsets
from driftd.daemon.alarm_log import AlarmLog
from driftd.daemon.checks import check_columns, sample_rows
from driftd.daemon.columns import ModelSchema
from driftd.daemon.join import JoinStore
from driftd.daemon.monitors import OperationalMonitor
from driftd.daemon.performance import performance_streams
from driftd.daemon.summaries import ModelSummarizer, encode
from driftd.daemon.timeguard import TimeGuard
from driftd.rollout.counts import VersionCounts

STATE_KIND = "driftd.partition"
STATE_VERSION = 2  # 2: each model's state holds its alarms
MAX_VERSIONS = 1000
MAX_CLASSES = 10_000


@dataclass(frozen=True)
class ModelCounts:
    """One model's counters in one partition, copied: join outcomes, what waits in the join,
    and predictions accepted without each declared feature."""

    join: dict[str, int]
    pending: int
    pending_labels: int
    missing: dict[str, int]


@dataclass(frozen=True)
class PartitionCounts:
    """One partition's counters, copied: events consumed, dead-lettered and ignored (by
    reason), and each model's counts."""

    partition: int
    consumed: int
    dead_lettered: dict[str, int]
    ignored: dict[str, int]
    models: dict[str, ModelCounts]


class ModelState:
    """One model's state within one partition."""

    def __init__(
        self,
        schema: ModelSchema,
        join: JoinSettings,
        extra: Sequence[Monitor] = (),
        bucket_s: float = 10.0,
    ) -> None:
        s = schema.settings
        self.schema = schema
        self.versions = Vocab(cap=MAX_VERSIONS)
        self.categories = [Vocab(cap=s.max_categories) for _ in schema.categorical_names]
        # declared classes first: their codes are their index, the same in every partition
        self.classes = Vocab(schema.class_names, cap=MAX_CLASSES)
        self.store = JoinStore(
            len(schema.numeric_names),
            len(schema.categorical_names),
            s.max_label_delay_s,
            join.allowed_lateness_s,
            join.max_pending,
            join.overflow,
            max_stream_skew_s=join.max_stream_skew_s,
            guard=TimeGuard(join.max_future_s, join.min_ts),
            n_classes=len(schema.class_names),
        )
        self.operational = OperationalMonitor(s.window_s, s.windows_kept)
        self.version_counts = VersionCounts(s.task)  # SLIs and canary evidence
        self.monitors: list[Monitor] = [self.operational, self.version_counts, *extra]
        # What the partition reports to the leader at its next checkpoint (``summaries``).
        self.summary = ModelSummarizer(
            s.task,
            [
                *(d.stream for d in s.detectors),
                *(f"col:{n}" for n in check_columns(s)),
                *performance_streams(s),
            ],
            schema.numeric_names,
            bucket_s,
            sample_rows=sample_rows(s),
        )
        self.alarms = AlarmLog(schema.name)  # what the extra monitors raised
        self.missing: Counter[str] = Counter()  # per declared feature: predictions without it

    def state_dict(self) -> dict[str, Any]:
        """Vocabularies, join store, monitors and alarms."""
        return {
            "versions": self.versions.values,
            "categories": [v.values for v in self.categories],
            "classes": self.classes.values,
            "store": self.store.state_dict(),
            "operational": self.operational.state_dict(),
            "counts": self.version_counts.state_dict(),
            "extra": [m.state_dict() for m in self.monitors[2:]],
            "alarms": self.alarms.state_dict(),
            "missing": dict(self.missing),
        }

    def counts(self) -> ModelCounts:
        """A copy of the model's counters."""
        store = self.store
        return ModelCounts(
            dict(store.counts), store.pending, store.pending_labels, dict(self.missing)
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from state_dict()."""
        self.versions = Vocab(state["versions"], cap=MAX_VERSIONS)
        self.categories = [
            Vocab(v, cap=c.cap) for v, c in zip(state["categories"], self.categories, strict=True)
        ]
        self.classes = Vocab(state["classes"], cap=MAX_CLASSES)
        self.store.load_state_dict(state["store"])
        self.operational.load_state_dict(state["operational"])
        if "counts" in state:
            self.version_counts.load_state_dict(state["counts"])
        extra = state["extra"]
        if len(extra) == len(self.monitors) - 2:  # else the configured monitors changed
            for m, ms in zip(self.monitors[2:], extra, strict=True):
                m.load_state_dict(ms)
        self.alarms.load_state_dict(state["alarms"])
        self.missing = Counter(state.get("missing", {}))


@dataclass
class PartitionState:
    """Everything that one partition's checkpoint holds."""

    partition: int
    models: dict[str, ModelState]
    offsets: Offsets = field(default_factory=dict)
    consumed: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)

    def watermark(self, lateness_s: float) -> float:
        """The event time below which this partition expects no more events: over the models
        it has seen events of, the least join watermark, less ``lateness_s`` (-inf before
        any). The join watermark follows the slower of the two streams, so labels read behind
        their predictions are not late; a model whose labels never come is judged
        ``join.max_stream_skew_s`` behind its predictions (lower it for such a model)."""
        marks = [m.store.watermark for m in self.models.values()]
        seen = [w for w in marks if math.isfinite(w)]
        return min(seen) - lateness_s if seen else -math.inf

    def report_data(self) -> bytes:
        """The buckets buffered since the last checkpoint, for the leader."""
        return encode({name: m.summary for name, m in self.models.items()})

    def clear_report(self) -> None:
        """Forget the buffered buckets once their report is saved."""
        for m in self.models.values():
            m.summary.clear()

    def to_blob(self) -> bytes:
        """Offsets, counters and every model's state as a versioned blob."""
        return state_codec.dumps(
            STATE_KIND,
            STATE_VERSION,
            {
                "offsets": self.offsets,
                "consumed": self.consumed,
                "dead_lettered": dict(self.dead_lettered),
                "ignored": dict(self.ignored),
                "models": {name: m.state_dict() for name, m in self.models.items()},
            },
        )

    def load_blob(self, blob: bytes) -> None:
        """Restore from to_blob() (or an older version); models this state lacks are dropped."""
        state = state_codec.loads(blob, STATE_KIND, STATE_VERSION, {1: _from_v1})
        self.offsets = {k: int(v) for k, v in state["offsets"].items()}
        self.consumed = int(state["consumed"])
        self.dead_lettered = Counter(state["dead_lettered"])
        self.ignored = Counter(state["ignored"])
        for name, ms in state["models"].items():
            if name in self.models:
                self.models[name].load_state_dict(ms)

    def counts(self) -> PartitionCounts:
        """A copy of the partition's counters, model by model."""
        return PartitionCounts(
            self.partition,
            self.consumed,
            dict(self.dead_lettered),
            dict(self.ignored),
            {name: m.counts() for name, m in list(self.models.items())},
        )


def _from_v1(state: dict[str, Any]) -> dict[str, Any]:
    """A version 1 partition state as version 2: no alarms were kept."""
    for ms in state["models"].values():
        ms["alarms"] = {"recent": [], "totals": [], "last": []}
    return state
