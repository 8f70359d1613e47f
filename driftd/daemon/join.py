"""The prediction/label join: by id, in either arrival order, bounded in memory.

Semantics (all in event time, so a replay gives the same result whatever the batch sizes):

- A label joins its prediction when ``label.ts - prediction.ts <= max_label_delay``.
- Each stream's progress is its largest timestamp seen (``wp`` for predictions, ``wl`` for
  labels). The watermark is ``W = max(min(wp, wl), max(wp, wl) - max_stream_skew) -
  allowed_lateness``: it follows the slower stream (so a labels topic read ahead of its
  predictions topic expires nothing early) unless that stream lags by more than the allowed
  skew (so a model whose labels stop still releases its predictions). A prediction is held
  until ``W > ts + max_label_delay``; it then leaves the store, counted ``expired`` when no
  label joined it. While held, a second prediction with its id is a
  ``duplicate``, and so is a second label once it joined.
- A label with no joinable prediction waits until ``W > label.ts``; it then counts as
  ``unmatched_labels``.
- Both stores release entries in arrival order (FIFO): an entry stays until every entry before
  it has left, which in a time-ordered stream changes nothing and keeps expiry O(expired).
- Results are independent of batch sizes, and of the interleaving of the two streams as long
  as they are out of step by less than the allowed lateness.
- An event stamped far ahead of the stream's time never reaches the store, so it cannot move
  the watermark: the pipeline asks ``screen`` (``timeguard``) first and dead-letters it.

Pending predictions live in a FIFO ring of numpy columns (about 205 bytes per prediction with
20 numeric and 2 categorical features, plus the id string) indexed by id in a numpy hash table
(``IdIndex``, 8 to 32 bytes per prediction); a full store evicts its oldest entries or drops
new ones, by policy, and counts them.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from driftd.contracts.columns import (
    F64,
    I32,
    JoinedColumns,
    LabelColumns,
    PredictionColumns,
    no_scores,
)
from driftd.daemon.idindex import I64, IdIndex, hashes
from driftd.daemon.timeguard import Rejection, TimeGuard
from driftd.daemon.waiting import WaitingLabels

_EXPIRE_CHUNK = 4096


JoinCounter = Literal[
    "predictions",
    "labels",
    "joined",
    "expired",
    "duplicates",
    "unmatched_labels",
    "evicted",
    "dropped",
]
JOIN_COUNTERS: tuple[JoinCounter, ...] = JoinCounter.__args__  # type: ignore[attr-defined]


class JoinStore:
    """Pending predictions and labels of one model in one partition."""

    def __init__(
        self,
        n_numeric: int,
        n_categorical: int,
        max_label_delay_s: float,
        allowed_lateness_s: float,
        max_pending: int,
        overflow: Literal["evict_oldest", "drop_new"],
        initial_capacity: int = 1024,
        max_stream_skew_s: float = 3600.0,
        guard: TimeGuard | None = None,
        n_classes: int = 0,
    ) -> None:
        self.k, self.m = n_numeric, n_categorical
        self.n_classes = n_classes  # width of each prediction's ``scores`` (0: none kept)
        self.max_delay = max_label_delay_s
        self.lateness = allowed_lateness_s
        self.max_pending = max_pending
        self.overflow = overflow
        self.skew = max_stream_skew_s
        self.guard = guard  # refuses event times that would corrupt the watermark
        self.wm_predictions = -np.inf  # largest prediction timestamp seen
        self.wm_labels = -np.inf  # largest label timestamp seen
        self.counts: dict[str, int] = dict.fromkeys(JOIN_COUNTERS, 0)
        self._head = 0  # ring position of the oldest entry
        self._head_seq = 0  # its sequence number (kept in the state for continuity)
        self._size = 0
        self._joined_held = 0  # held entries that already have their label
        self._alloc(max(16, initial_capacity))
        self._index = IdIndex(2 * self._cap)  # id -> ring position
        self._labels = WaitingLabels(max_pending)  # labels waiting for their prediction

    # -- storage -------------------------------------------------------------------------
    def _alloc(self, cap: int) -> None:
        self._cap = cap
        self._ids: npt.NDArray[np.object_] = np.empty(cap, dtype=object)
        self._version = np.zeros(cap, dtype=np.int32)
        self._ts = np.zeros(cap, dtype=np.float64)
        self._numeric = np.zeros((cap, self.k), dtype=np.float64)
        self._categorical = np.zeros((cap, self.m), dtype=np.int32)
        self._prediction = np.zeros(cap, dtype=np.float64)
        self._score = np.zeros(cap, dtype=np.float64)
        self._scores = np.zeros((cap, self.n_classes), dtype=np.float64)
        self._joined = np.zeros(cap, dtype=np.bool_)

    def _columns(self) -> tuple[np.ndarray[Any, Any], ...]:
        return (
            self._ids,
            self._version,
            self._ts,
            self._numeric,
            self._categorical,
            self._prediction,
            self._score,
            self._scores,
            self._joined,
        )

    def _order(self) -> npt.NDArray[np.intp]:
        """Ring positions of held entries, oldest first."""
        return (self._head + np.arange(self._size)) % self._cap

    def _grow(self, need: int) -> None:
        cap = self._cap
        while cap < need:
            cap *= 2
        order = self._order()
        old = self._columns()
        self._alloc(cap)
        for new_col, old_col in zip(self._columns(), old, strict=True):
            new_col[: self._size] = old_col[order]
        self._index.shift(self._head, len(old[0]))
        self._head = 0

    def _reindex(self) -> None:
        """Rebuild the id index from the held entries (positions changed, or a restore)."""
        order = self._order()
        self._index.rebuild(hashes(self._ids[order].tolist()), order)

    @property
    def watermark(self) -> float:
        """Event time up to which both streams are complete (before lateness)."""
        lo = min(self.wm_predictions, self.wm_labels)
        hi = max(self.wm_predictions, self.wm_labels)
        return float(max(lo, hi - self.skew))

    def screen(self, ts: F64, ids: list[str], now: float | None) -> list[Rejection]:
        """Events (by index) whose time the guard refuses; none without a guard."""
        if self.guard is None:
            return []
        progress = max(self.wm_predictions, self.wm_labels)
        return self.guard.screen(ts, ids, float(progress), now)

    @property
    def held(self) -> int:
        """Predictions in the store, joined or not."""
        return self._size

    @property
    def pending(self) -> int:
        """Predictions still waiting for a label."""
        return self._size - self._joined_held

    @property
    def pending_labels(self) -> int:
        """Labels waiting for their prediction."""
        return len(self._labels)

    def nbytes(self) -> int:
        """Memory of the columns and the id index (not counting the id strings)."""
        return sum(c.nbytes for c in self._columns()) + self._index.nbytes

    # -- predictions ---------------------------------------------------------------------
    def _first_new(self, ids: list[str], keys: I64) -> npt.NDArray[np.intp]:
        """Indices of ids neither held nor seen earlier in the batch."""
        n = len(ids)
        # Written back to front, each id keeps the index of its first occurrence (dict in C).
        first = dict(zip(reversed(ids), range(n - 1, -1, -1), strict=True))
        if len(first) == n:
            keep = np.arange(n)
        else:
            keep = np.fromiter(first.values(), dtype=np.intp, count=len(first))
            keep.sort()
        if not len(self._index):
            return keep
        if len(keep) == n:  # no repeats in the batch: look the whole batch up as it is
            held = self._index.find(keys, ids, self._ids)
        else:
            held = self._index.find(keys[keep], [ids[i] for i in keep.tolist()], self._ids)
        return keep if not (held >= 0).any() else keep[held < 0]

    def _make_room(self, keep: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """Apply the overflow policy to new entries ``keep``; return those to store."""
        excess = self._size + len(keep) - self.max_pending
        if excess <= 0:
            return keep
        if self.overflow == "drop_new":
            room = max(self.max_pending - self._size, 0)
            self.counts["dropped"] += len(keep) - room
            return keep[:room]
        from_store = min(excess, self._size)
        self._pop(from_store, counter="evicted")
        # A batch larger than the whole store: its own oldest never enter, as if evicted.
        skip = excess - from_store
        self.counts["evicted"] += skip
        return keep[skip:]

    def add_predictions(
        self, cols: PredictionColumns
    ) -> tuple[npt.NDArray[np.intp], JoinedColumns | None]:
        """Store new predictions; return the indices accepted and joins with waiting labels."""
        if not len(cols):
            return np.empty(0, dtype=np.intp), None
        keys = hashes(cols.ids)
        keep = self._first_new(cols.ids, keys)
        self.counts["duplicates"] += len(cols) - len(keep)
        self.counts["predictions"] += len(keep)
        self.wm_predictions = max(self.wm_predictions, float(cols.ts.max()))
        stored = self._make_room(keep)
        n = len(stored)
        if n:
            if self._size + n > self._cap:
                self._grow(self._size + n)
            pos = (self._head + self._size + np.arange(n)) % self._cap
            ids = [cols.ids[i] for i in stored.tolist()]
            self._ids[pos] = ids
            self._index.add(keys[stored], pos, self._ids)
            self._version[pos] = cols.version[stored]
            self._ts[pos] = cols.ts[stored]
            self._numeric[pos] = cols.numeric[stored]
            self._categorical[pos] = cols.categorical[stored]
            self._prediction[pos] = cols.prediction[stored]
            self._score[pos] = cols.score[stored]
            if self.n_classes:
                self._scores[pos] = cols.scores[stored]
            self._joined[pos] = False
            self._size += n
        else:
            pos = np.empty(0, dtype=np.intp)
        joined = self._join_waiting_labels(cols, stored, pos) if self._labels else None
        return keep, joined

    def _join_waiting_labels(
        self, cols: PredictionColumns, stored: npt.NDArray[np.intp], pos: npt.NDArray[np.intp]
    ) -> JoinedColumns | None:
        hits = self._labels.claim(cols.ids, cols.ts, stored.tolist(), self.max_delay)
        if not hits:
            return None
        k = np.asarray([k for k, _, _ in hits], dtype=np.intp)
        lts = np.asarray([lt for _, lt, _ in hits])
        lvals = np.asarray([lv for _, _, lv in hits])
        return self._join(pos[k], lts, lvals, [cols.ids[i] for i in stored[k].tolist()])

    # -- labels --------------------------------------------------------------------------
    def add_labels(self, cols: LabelColumns) -> JoinedColumns | None:
        """Join labels to held predictions; the rest wait. Returns the joins made."""
        n = len(cols)
        if not n:
            return None
        dup_before = self.counts["duplicates"]
        self.wm_labels = max(self.wm_labels, float(cols.ts.max()))
        seq = self._index.find(hashes(cols.ids), cols.ids, self._ids)  # ring positions
        found = np.flatnonzero(seq >= 0)
        join_rows = np.empty(0, dtype=np.intp)
        waiting: npt.NDArray[np.intp]
        if len(found):
            pos = seq[found]
            already = self._joined[pos]
            in_time = cols.ts[found] - self._ts[pos] <= self.max_delay
            self.counts["duplicates"] += int(already.sum())
            cand = found[~already & in_time]
            # Two labels for one prediction in the same batch: the first joins.
            _, first = np.unique(seq[cand], return_index=True)
            first.sort()
            join_rows = cand[first]
            self.counts["duplicates"] += len(cand) - len(join_rows)
            waiting = np.sort(np.concatenate([found[~already & ~in_time], np.flatnonzero(seq < 0)]))
        else:
            waiting = np.arange(n)
        # In arrival order: the label store is FIFO too.
        duplicates, evicted = self._labels.add(cols, waiting)
        self.counts["duplicates"] += duplicates
        self.counts["evicted"] += evicted
        self.counts["labels"] += n - (self.counts["duplicates"] - dup_before)
        if not len(join_rows):
            return None
        ids = [cols.ids[r] for r in join_rows.tolist()]
        return self._join(seq[join_rows], cols.ts[join_rows], cols.label[join_rows], ids)

    def _join(
        self, pos: npt.NDArray[np.integer], label_ts: F64, label: F64, ids: list[str]
    ) -> JoinedColumns:
        self._joined[pos] = True
        self._joined_held += len(pos)
        self.counts["joined"] += len(pos)
        return JoinedColumns(
            version=self._version[pos],
            ts=self._ts[pos],
            label_ts=np.asarray(label_ts, dtype=np.float64),
            numeric=self._numeric[pos],
            categorical=self._categorical[pos],
            prediction=self._prediction[pos],
            score=self._score[pos],
            label=np.asarray(label, dtype=np.float64),
            ids=ids,
            scores=self._scores[pos] if self.n_classes else no_scores(),
        )

    # -- expiry --------------------------------------------------------------------------
    def _pop(self, n: int, counter: str) -> I32:
        """Remove the n oldest entries; count the unjoined ones; return their versions."""
        if n <= 0:
            return np.empty(0, dtype=np.int32)
        pos = (self._head + np.arange(n)) % self._cap
        unjoined = ~self._joined[pos]
        self._index.remove(hashes(self._ids[pos].tolist()), pos)
        self._ids[pos] = None
        n_unjoined = int(unjoined.sum())
        self.counts[counter] += n_unjoined
        self._joined_held -= n - n_unjoined
        self._head = (self._head + n) % self._cap
        self._head_seq += n
        self._size -= n
        return self._version[pos][unjoined]

    def expire(self) -> I32:
        """Release entries the watermark has passed; return the versions of expired ones."""
        limit = self.watermark - self.lateness - self.max_delay
        out: list[I32] = []
        while self._size:
            n = min(self._size, _EXPIRE_CHUNK)
            pos = (self._head + np.arange(n)) % self._cap
            # FIFO: stop at the first entry still inside its window (arrival ~ time order).
            alive = np.flatnonzero(self._ts[pos] >= limit)
            cut = int(alive[0]) if len(alive) else n
            out.append(self._pop(cut, counter="expired"))
            if cut < n:
                break
        if self._labels:
            self.counts["unmatched_labels"] += self._labels.expire(self.watermark - self.lateness)
        return np.concatenate(out) if out else np.empty(0, dtype=np.int32)

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Held entries (oldest first), waiting labels, watermark and counters."""
        order = self._order()
        return {
            "ids": self._ids[order].tolist(),
            "version": self._version[order],
            "ts": self._ts[order],
            "numeric": self._numeric[order],
            "categorical": self._categorical[order],
            "prediction": self._prediction[order],
            "score": self._score[order],
            **({"scores": self._scores[order]} if self.n_classes else {}),
            "joined": self._joined[order],
            **self._labels.state_dict(),
            "wm_predictions": float(self.wm_predictions),
            "wm_labels": float(self.wm_labels),
            "counts": dict(self.counts),
            "head_seq": self._head_seq,
            "guard": self.guard.state_dict() if self.guard is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from state_dict()."""
        ids: list[str] = state["ids"]
        n = len(ids)
        cap = 16
        while cap < n:
            cap *= 2
        self._alloc(max(cap, self._cap))
        self._head, self._size, self._head_seq = 0, n, int(state["head_seq"])
        if n:
            self._ids[:n] = ids
        self._version[:n] = state["version"]
        self._ts[:n] = state["ts"]
        self._numeric[:n] = np.asarray(state["numeric"]).reshape(n, self.k)
        self._categorical[:n] = np.asarray(state["categorical"]).reshape(n, self.m)
        self._prediction[:n] = state["prediction"]
        self._score[:n] = state["score"]
        if self.n_classes:  # a checkpoint from before the classes were declared has none
            got = np.asarray(state.get("scores", np.full((n, 0), np.nan)))
            ok = got.size == n * self.n_classes
            self._scores[:n] = got.reshape(n, self.n_classes) if ok else np.nan
        self._joined[:n] = state["joined"]
        self._joined_held = int(np.count_nonzero(self._joined[:n]))
        self._reindex()
        self._labels.load_state_dict(state)
        if self.guard is not None and state.get("guard") is not None:
            self.guard.load_state_dict(state["guard"])
        self.wm_predictions = float(state["wm_predictions"])
        self.wm_labels = float(state["wm_labels"])
        self.counts = dict.fromkeys(JOIN_COUNTERS, 0) | {
            k: int(v) for k, v in state["counts"].items()
        }
