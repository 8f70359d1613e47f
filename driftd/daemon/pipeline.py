"""The pipeline: raw chunks -> decoded, validated columns -> join -> monitors.

State is kept per partition (Kafka partition number, or 0 for files) so that a partition's
join store, monitors, counters and offsets move together on a rebalance and are checkpointed
together. Nothing here does I/O: dead letters are returned to the caller.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import msgspec
import numpy as np

from driftd.config import IngestSettings, JoinSettings, LeaderSettings, ModelSettings
from driftd.contracts.columns import JoinedColumns, LabelColumns, PredictionColumns
from driftd.contracts.events import (
    DECODE_ERRORS,
    DeadLetter,
    DeadLetterReason,
    DecodeFailed,
    EventHead,
    LabelHead,
    Position,
    PredictionHead,
    classify,
)
from driftd.contracts.monitor import DriftDetected, Monitor, MonitorBatch
from driftd.daemon.abc import RawChunk
from driftd.daemon.alarm_log import Alarms, merged
from driftd.daemon.columns import (
    ModelSchema,
    concat_joined,
    empty_predictions,
    label_columns,
    prediction_columns,
    segment_label,
)
from driftd.daemon.decode import decode_many, single
from driftd.daemon.heads import HEAD_DECODERS
from driftd.daemon.screen import screen
from driftd.daemon.state import ModelState, PartitionCounts, PartitionState
from driftd.daemon.summary import summarize
from driftd.daemon.validity import missing_counts

ExtraMonitors = Callable[[str, ModelSchema], Sequence[Monitor]]
TYPE_ERRORS = frozenset({"schema", "invalid_value"})  # a feature of the wrong type or range

_MODEL = operator.attrgetter("model")
_FEATURES = operator.attrgetter("features")


@dataclass
class ChunkOutcome:
    """What one processed chunk produced: dead letters, alarms and counter deltas."""

    consumed: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)
    join_deltas: dict[str, Counter[str]] = field(default_factory=dict)
    alarms: list[DriftDetected] = field(default_factory=list)
    # Joined rows for the labeled event store, with the categorical vocabularies they use.
    labeled: list[tuple[MonitorBatch, list[list[str]]]] = field(default_factory=list)


class Pipeline:
    """Processes chunks into per-partition state; snapshots and restores that state."""

    def __init__(
        self,
        models: dict[str, ModelSettings],
        ingest: IngestSettings,
        join: JoinSettings,
        extra_monitors: ExtraMonitors | None = None,
        clock: Callable[[], float] | None = None,
        leader: LeaderSettings | None = None,
    ) -> None:
        self.schemas = {name: ModelSchema(name, s) for name, s in models.items()}
        self.ingest = ingest
        self.join = join
        self.extra_monitors = extra_monitors
        self.clock = clock  # the wall clock when following a live source; None in a replay
        self.leader = leader or LeaderSettings()  # buckets and lateness of the reports
        self.partitions: dict[int, PartitionState] = {}

    def schemas_settings(self) -> dict[str, ModelSettings]:
        """Each configured model's settings."""
        return {name: s.settings for name, s in self.schemas.items()}

    # -- partitions ----------------------------------------------------------------------
    def _new_partition(self, p: int) -> PartitionState:
        models = {
            name: ModelState(
                schema,
                self.join,
                self.extra_monitors(name, schema) if self.extra_monitors else (),
                self.leader.bucket_s,
            )
            for name, schema in self.schemas.items()
        }
        return PartitionState(p, models)

    def partition(self, p: int) -> PartitionState:
        """The state of partition p, created empty when new."""
        st = self.partitions.get(p)
        if st is None:
            st = self.partitions[p] = self._new_partition(p)
        return st

    def drop(self, p: int) -> None:
        """Forget a partition (after it was revoked and checkpointed)."""
        self.partitions.pop(p, None)

    def snapshot(self, p: int) -> bytes:
        """The partition's state as a versioned blob."""
        return self.partition(p).to_blob()

    def restore(self, p: int, blob: bytes) -> PartitionState:
        """Replace partition p's state with a snapshot; models unknown to the config are
        dropped, new models start empty."""
        st = self._new_partition(p)
        st.load_blob(blob)
        self.partitions[p] = st
        return st

    # -- processing ----------------------------------------------------------------------
    def process(self, chunk: RawChunk) -> ChunkOutcome:
        """Decode, validate, join and monitor one chunk; record its resume offsets."""
        st = self.partition(chunk.partition)
        out = ChunkOutcome(consumed=len(chunk.raws))
        st.consumed += len(chunk.raws)

        def reject(i: int, reason: DeadLetterReason, detail: str) -> None:
            out.dead_letters.append(
                DeadLetter(
                    raw=chunk.raws[i],
                    position=Position(chunk.source, chunk.partition, chunk.positions[i]),
                    reason=reason,
                    detail=detail,
                )
            )

        rows = self._size_filter(chunk, out, reject)
        decoder, one = HEAD_DECODERS[chunk.stream]
        raws = chunk.raws if isinstance(rows, range) else [chunk.raws[i] for i in rows]
        heads, failures = decode_many(decoder, raws, one)
        for k, exc in failures:
            reject(rows[k], exc.reason, exc.detail)

        preds, labels = self._group(heads, [k for k, _ in failures], rows, out, reject)
        now = self.clock() if self.clock is not None else None
        for name in preds.keys() | labels.keys():
            pidx, lidx, refused = screen(
                st.models[name], heads, preds.get(name, []), labels.get(name, []), now
            )
            for k, reason, detail in refused:
                reject(rows[k], reason, detail)
            self._process_model(
                st.models[name],
                [heads[k] for k in pidx],  # type: ignore[misc]
                [rows[k] for k in pidx],
                [heads[k] for k in lidx],  # type: ignore[misc]
                out,
                reject,
            )
        for model in st.models.values():  # the watermark may have moved for every model
            self._expire(model, out)
        st.dead_lettered.update(d.reason for d in out.dead_letters)
        st.ignored.update(out.ignored)
        st.offsets.update(chunk.resume)
        return out

    def _group(
        self,
        heads: list[EventHead | None],
        failed: list[int],
        rows: Sequence[int],
        out: ChunkOutcome,
        reject: Callable[[int, DeadLetterReason, str], None],
    ) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        """Indices of prediction and label heads, by model; unknown models by policy."""
        n = len(heads)
        is_pred = np.fromiter(map(isinstance, heads, repeat(PredictionHead, n)), np.bool_, n)
        is_label = ~is_pred
        if failed:
            is_label[failed] = False  # None: the event was dead-lettered
        groups: list[dict[str, list[int]]] = []
        for mask in (is_pred, is_label):
            idx: list[int] = np.flatnonzero(mask).tolist()
            models = set(map(_MODEL, map(heads.__getitem__, idx)))
            if len(models) == 1 and (only := models.pop()) in self.schemas:
                groups.append({only: idx})  # the common case: one known model per batch
                continue
            by_model: dict[str, list[int]] = {}
            for k in idx:
                model = heads[k].model  # type: ignore[union-attr]
                if model in self.schemas:
                    by_model.setdefault(model, []).append(k)
                elif self.ingest.unknown_model == "ignore":
                    out.ignored["unknown_model"] += 1
                else:
                    known = ", ".join(sorted(self.schemas))
                    reject(
                        rows[k],
                        "unknown_model",
                        f"model {model!r} is not configured; known: {known}",
                    )
            groups.append(by_model)
        return groups[0], groups[1]

    def _size_filter(
        self,
        chunk: RawChunk,
        out: ChunkOutcome,
        reject: Callable[[int, DeadLetterReason, str], None],
    ) -> Sequence[int]:
        """Indices of the events within ``ingest.max_event_bytes``; the rest by policy."""
        limit = self.ingest.max_event_bytes
        n = len(chunk.raws)
        if max(map(len, chunk.raws), default=0) <= limit:
            return range(n)
        lengths = np.fromiter(map(len, chunk.raws), dtype=np.int64, count=n)
        for i in np.flatnonzero(lengths > limit).tolist():
            if self.ingest.oversized == "ignore":
                out.ignored["oversized"] += 1
            else:
                reject(
                    i,
                    "oversized",
                    f"event of {lengths[i]} bytes or more exceeds ingest.max_event_bytes = {limit}",
                )
        kept: list[int] = np.flatnonzero(lengths <= limit).tolist()
        return kept

    def _features(
        self,
        model: ModelState,
        heads: list[PredictionHead],
        rows: Sequence[int],
        out: ChunkOutcome,
        reject: Callable[[int, DeadLetterReason, str], None],
    ) -> tuple[list[PredictionHead], list[Any]]:
        schema = model.schema
        ignore_unknown = self.ingest.unknown_feature == "ignore"
        lenient = single(schema.lenient_decoder)

        def one(raw: bytes | msgspec.Raw) -> Any:
            try:
                return schema.strict_decoder.decode(raw)
            except DECODE_ERRORS as exc:
                failed = classify(exc, raw)
                if "unknown field" in failed.detail:
                    if ignore_unknown:
                        out.ignored["unknown_feature"] += 1
                        return lenient(raw)
                    failed = DecodeFailed("unknown_feature", failed.detail)
                raise failed from None

        feats, failures = decode_many(
            schema.strict_decoder,
            list(map(_FEATURES, heads)),
            one,
        )
        if not failures:
            return heads, feats
        typed = [heads[k].ts for k, exc in failures if exc.reason in TYPE_ERRORS]
        if typed and any(c.check == "type_errors" for c in schema.settings.checks):
            model.summary.add_type_errors(np.asarray(typed, np.float64))
        for k, exc in failures:
            detail = exc.detail.replace("`$", "`$.features", 1)
            if exc.reason == "unknown_feature":
                detail += (
                    f"; model {schema.name!r} has features {', '.join(schema.settings.features)}"
                )
            reject(rows[k], exc.reason, detail)
        good = [k for k, f in enumerate(feats) if f is not None]
        return [heads[k] for k in good], [feats[k] for k in good]

    def _process_model(
        self,
        model: ModelState,
        pheads: list[PredictionHead],
        prows: list[int],
        lheads: list[LabelHead],
        out: ChunkOutcome,
        reject: Callable[[int, DeadLetterReason, str], None],
    ) -> None:
        before = dict(model.store.counts)
        joins: list[JoinedColumns] = []
        new_preds: PredictionColumns | None = None
        segments: list[str] = []
        if pheads:
            pheads, feats = self._features(model, pheads, prows, out, reject)
            if pheads:
                cols = prediction_columns(
                    pheads, feats, model.schema, model.versions, model.categories, model.classes
                )
                keep, joined = model.store.add_predictions(cols)
                new_preds = cols if len(keep) == len(cols) else cols.take(keep)
                seg = model.schema.settings.segments
                if seg is not None:
                    labels = [segment_label(h.segment, seg.keys) for h in pheads]
                    segments = [labels[i] for i in keep.tolist()]
                schema = model.schema
                model.missing.update(
                    missing_counts(new_preds, schema.numeric_names, schema.categorical_names)
                )
                if joined is not None:
                    joins.append(joined)
        if lheads:
            lcols: LabelColumns = label_columns(
                lheads, model.classes, bool(model.schema.class_names)
            )
            joined = model.store.add_labels(lcols)
            if joined is not None:
                joins.append(joined)
        self._delta(model, before, out)
        if new_preds is None and not joins:
            return
        self._monitor(model, new_preds, joins, np.empty(0, dtype=np.int32), out, segments)

    def _expire(self, model: ModelState, out: ChunkOutcome) -> None:
        before = dict(model.store.counts)
        expired = model.store.expire()
        self._delta(model, before, out)
        if len(expired):
            self._monitor(model, None, [], expired, out)

    def _delta(self, model: ModelState, before: dict[str, int], out: ChunkOutcome) -> None:
        after = model.store.counts
        d = out.join_deltas.setdefault(model.schema.name, Counter())
        for k, v in after.items():
            if v != before[k]:
                d[k] += v - before[k]

    def _monitor(
        self,
        model: ModelState,
        preds: PredictionColumns | None,
        joins: list[JoinedColumns],
        expired: np.ndarray[Any, Any],
        out: ChunkOutcome,
        segments: Sequence[str] = (),
    ) -> None:
        schema = model.schema
        batch = MonitorBatch(
            model=schema.name,
            versions=model.versions.values,
            predictions=preds if preds is not None else empty_predictions(schema),
            joined=concat_joined(joins),
            expired_versions=expired,
            numeric_names=schema.numeric_names,
            categorical_names=schema.categorical_names,
            categorical_keys=[v.keys() for v in model.categories],
            categorical_values=[v.values for v in model.categories],
            segments=segments,
            class_names=schema.class_names,
            target_keys=model.classes.keys() if schema.class_names else np.empty(0),
        )
        for m in model.monitors:
            fired = m.update(batch)
            out.alarms.extend(fired)
            model.alarms.record(fired)
        model.summary.update(batch)
        if batch.joined is not None and len(batch.joined):
            out.labeled.append((batch, [v.values for v in model.categories]))

    # -- reading (at scrape time, while the loop writes) -----------------------------------
    def summary(self, alarms: Alarms | None = None) -> dict[str, Any]:
        """Counts per model, dead letters by reason and recent windows, over all partitions;
        the given alarms (the leader's) with those of the partitions' extra monitors."""
        return summarize(self.schemas, self.partitions.values(), alarms)

    def features(self) -> dict[str, list[str]]:
        """Each configured model's declared features."""
        return {name: list(s.settings.features) for name, s in self.schemas.items()}

    def counts(self) -> list[PartitionCounts]:
        """A copy of each held partition's counters (empty while it holds none)."""
        return [st.counts() for st in list(self.partitions.values())]

    def alarms(self) -> Alarms:
        """The drift alarms kept and counted, merged over partitions."""
        return merged(m.alarms for st in list(self.partitions.values()) for m in st.models.values())
