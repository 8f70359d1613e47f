"""JoinStore: event-time join semantics from the module docstring, one rule per test."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pytest

from driftd.contracts.columns import JoinedColumns, LabelColumns, PredictionColumns
from driftd.daemon import state_codec
from driftd.daemon.join import JOIN_COUNTERS, JoinStore

DELAY = 10.0
LATENESS = 5.0
SKEW = 1000.0


def store(
    max_pending: int = 1000,
    overflow: Literal["evict_oldest", "drop_new"] = "evict_oldest",
    initial_capacity: int = 16,
) -> JoinStore:
    return JoinStore(1, 1, DELAY, LATENESS, max_pending, overflow, initial_capacity, SKEW)


def preds(ids: Sequence[str], ts: Sequence[float]) -> PredictionColumns:
    """Predictions whose numeric feature, category and value all identify the id."""
    n = len(ids)
    key = np.array([float(i[1:]) for i in ids])  # ids look like "p12"
    return PredictionColumns(
        ids=list(ids),
        version=(key % 3).astype(np.int32),
        ts=np.asarray(ts, dtype=np.float64),
        numeric=key.reshape(n, 1) * 10,
        categorical=key.astype(np.int32).reshape(n, 1),
        prediction=key,
        score=key / 1000,
        latency_ms=np.full(n, np.nan),
        error=np.zeros(n, dtype=np.bool_),
    )


def labels(ids: Sequence[str], ts: Sequence[float], values: Sequence[float] = ()) -> LabelColumns:
    vals = values or [float(i[1:]) + 0.5 for i in ids]
    return LabelColumns(list(ids), np.asarray(ts, dtype=np.float64), np.asarray(vals, float))


_TICKS = itertools.count(900_000)


def tick(s: JoinStore, t: float) -> None:
    """Advance both streams to t: a fresh prediction at t and its label, which joins it."""
    id_ = f"p{next(_TICKS)}"
    s.add_predictions(preds([id_], [t]))
    assert s.add_labels(labels([id_], [t])) is not None


def joined_pairs(j: JoinedColumns | None) -> list[tuple[float, float]]:
    """(prediction value, label value) of each join: the prediction value names the id."""
    if j is None:
        return []
    return sorted(zip(j.prediction.tolist(), j.label.tolist(), strict=True))


def counts(**nonzero: int) -> dict[str, int]:
    return dict.fromkeys(JOIN_COUNTERS, 0) | nonzero


# -- joining -------------------------------------------------------------------------------


def test_label_after_prediction_joins_with_its_row() -> None:
    s = store()
    _, j = s.add_predictions(preds(["p1", "p2"], [0.0, 1.0]))
    assert j is None
    j = s.add_labels(labels(["p2", "p1"], [3.0, 4.0], [7.0, 8.0]))
    assert j is not None
    assert joined_pairs(j) == [(1.0, 8.0), (2.0, 7.0)]
    assert sorted(j.label_ts.tolist()) == [3.0, 4.0]
    # Every column of a joined row comes from the same prediction.
    assert np.array_equal(j.numeric[:, 0], j.prediction * 10)
    assert np.array_equal(j.categorical[:, 0], j.prediction.astype(np.int32))
    assert np.allclose(j.score, j.prediction / 1000)
    assert s.counts == counts(predictions=2, labels=2, joined=2)
    assert s.pending == 0
    assert s.held == 2


def test_label_before_prediction_joins_when_the_prediction_arrives() -> None:
    s = store()
    assert s.add_labels(labels(["p5"], [2.0], [1.0])) is None
    assert s.pending_labels == 1
    keep, j = s.add_predictions(preds(["p4", "p5"], [1.0, 1.5]))
    assert keep.tolist() == [0, 1]
    assert joined_pairs(j) == [(5.0, 1.0)]
    assert s.pending_labels == 0
    assert s.pending == 1
    assert s.counts == counts(predictions=2, labels=1, joined=1)


@pytest.mark.parametrize("label_first", [False, True])
def test_join_limit_is_inclusive_of_max_label_delay(label_first: bool) -> None:
    s = store()
    p = preds(["p1", "p2"], [0.0, 0.0])
    lab = labels(["p1", "p2"], [DELAY, DELAY + 0.001])
    if label_first:
        s.add_labels(lab)
        _, j = s.add_predictions(p)
    else:
        s.add_predictions(p)
        j = s.add_labels(lab)
    assert joined_pairs(j) == [(1.0, 1.5)]
    assert s.counts["joined"] == 1
    assert s.pending_labels == 1  # the late label waits, it never joins p2


def test_late_label_counts_as_unmatched_once_the_watermark_passes_it() -> None:
    s = store()
    s.add_predictions(preds(["p1"], [0.0]))
    s.add_labels(labels(["p1"], [DELAY + 1]))
    s.expire()
    assert s.counts["joined"] == 0
    assert s.pending_labels == 1
    tick(s, DELAY + 1 + LATENESS + 0.5)
    s.expire()
    assert s.pending_labels == 0
    assert s.counts["unmatched_labels"] == 1
    assert s.counts["expired"] == 1  # p1 expired without a label


# -- duplicates ----------------------------------------------------------------------------


def test_duplicate_predictions_within_and_across_batches_count_once() -> None:
    s = store()
    keep, _ = s.add_predictions(preds(["p1", "p2", "p1"], [0.0, 1.0, 2.0]))
    assert keep.tolist() == [0, 1]
    keep, _ = s.add_predictions(preds(["p2", "p3"], [3.0, 4.0]))
    assert keep.tolist() == [1]
    assert s.counts == counts(predictions=3, duplicates=2)
    assert s.held == 3
    # The first of the duplicates is the one held.
    j = s.add_labels(labels(["p1"], [2.0]))
    assert j is not None
    assert j.ts.tolist() == [0.0]


def test_second_label_after_a_join_is_a_duplicate() -> None:
    s = store()
    s.add_predictions(preds(["p1"], [0.0]))
    s.add_labels(labels(["p1"], [1.0], [1.0]))
    assert s.add_labels(labels(["p1"], [2.0], [0.0])) is None
    # Also when the second label is late: a joined prediction takes no other label.
    assert s.add_labels(labels(["p1"], [DELAY + 5], [0.0])) is None
    assert s.counts == counts(predictions=1, labels=1, joined=1, duplicates=2)
    assert s.pending_labels == 0


def test_two_labels_in_one_batch_the_first_joins() -> None:
    s = store()
    s.add_predictions(preds(["p1"], [0.0]))
    j = s.add_labels(labels(["p1", "p1"], [1.0, 2.0], [3.0, 4.0]))
    assert joined_pairs(j) == [(1.0, 3.0)]
    assert s.counts == counts(predictions=1, labels=1, joined=1, duplicates=1)


@pytest.mark.parametrize("same_batch", [True, False])
def test_duplicate_waiting_labels_count_once_and_the_first_joins(same_batch: bool) -> None:
    s = store()
    if same_batch:
        s.add_labels(labels(["p1", "p1"], [1.0, 2.0], [3.0, 4.0]))
    else:
        s.add_labels(labels(["p1"], [1.0], [3.0]))
        s.add_labels(labels(["p1"], [2.0], [4.0]))
    assert s.pending_labels == 1
    _, j = s.add_predictions(preds(["p1"], [0.0]))
    assert joined_pairs(j) == [(1.0, 3.0)]
    assert s.counts == counts(predictions=1, labels=1, joined=1, duplicates=1)


# -- expiry --------------------------------------------------------------------------------


def test_prediction_is_held_until_the_watermark_passes_its_window() -> None:
    s = store()
    s.add_predictions(preds(["p1"], [0.0]))
    # W = min(wp, wl) - lateness here; held while W <= ts + max delay.
    tick(s, DELAY + LATENESS)
    assert s.expire().tolist() == []
    assert s.held == 2
    tick(s, DELAY + LATENESS + 0.01)
    assert s.expire().tolist() == [1 % 3]  # the version code of p1
    assert s.held == 2  # the two ticks, joined, still inside their windows
    assert s.counts["expired"] == 1


def test_joined_predictions_leave_without_counting_as_expired() -> None:
    s = store()
    s.add_predictions(preds(["p1", "p2"], [0.0, 0.0]))
    s.add_labels(labels(["p1"], [1.0]))
    tick(s, 100.0)
    assert s.expire().tolist() == [2 % 3]
    assert s.counts["expired"] == 1
    assert s.held == 1
    assert s.pending == 0


def test_waiting_label_is_unmatched_once_the_watermark_passes_it() -> None:
    s = store()
    s.add_labels(labels(["p1", "p2"], [20.0, 20.0 + LATENESS]))
    tick(s, 20.0 + LATENESS)
    s.expire()
    assert s.pending_labels == 2
    tick(s, 20.0 + LATENESS + 0.01)
    s.expire()
    assert s.pending_labels == 1
    assert s.counts["unmatched_labels"] == 1
    # An unmatched label is gone: its prediction, arriving now, does not join.
    _, j = s.add_predictions(preds(["p1"], [19.0]))
    assert j is None


def test_watermark_follows_the_slower_stream() -> None:
    s = store()
    # Labels read far ahead of their predictions expire nothing early...
    s.add_labels(labels(["p1", "p2"], [1000.0, 1001.0]))
    s.add_predictions(preds(["p3"], [0.0]))
    s.expire()
    assert (s.pending_labels, s.held) == (2, 1)
    # ... so the predictions still find them when they arrive.
    _, j = s.add_predictions(preds(["p1", "p2"], [995.0, 996.0]))
    assert [p for p, _ in joined_pairs(j)] == [1.0, 2.0]
    s.expire()
    assert s.counts["expired"] == 1  # p3: both streams are now past its window
    assert s.counts["unmatched_labels"] == 0


def test_predictions_without_labels_are_held_back_by_the_labels_stream() -> None:
    s = store()
    s.add_predictions(preds(["p1"], [0.0]))
    s.add_labels(labels(["p2"], [1.0]))
    s.add_predictions(preds(["p3"], [SKEW / 2]))
    s.expire()
    assert s.held == 2
    assert s.counts["expired"] == 0


@pytest.mark.parametrize("labels_seen", [False, True])
def test_a_stream_lagging_beyond_the_skew_stops_holding_the_watermark(labels_seen: bool) -> None:
    s = store()
    if labels_seen:
        s.add_labels(labels(["p9"], [0.0]))
    s.add_predictions(preds(["p1"], [0.0]))
    # W = wp - skew - lateness once the labels stream lags by more than the skew.
    s.add_predictions(preds(["p2"], [SKEW + LATENESS + DELAY]))
    s.expire()
    assert s.held == 2
    s.add_predictions(preds(["p3"], [SKEW + LATENESS + DELAY + 0.01]))
    assert s.expire().tolist() == [1 % 3]
    assert s.held == 2


def test_expiry_is_fifo_for_predictions() -> None:
    s = store()
    s.add_predictions(preds(["p1"], [100.0]))
    s.add_predictions(preds(["p2"], [0.0]))  # out of order: behind p1 in the queue
    tick(s, 30.0)  # W = 25: past p2's window, not p1's
    s.expire()
    assert s.held == 3
    assert s.counts["expired"] == 0
    # p2 still joins while it waits behind p1.
    assert joined_pairs(s.add_labels(labels(["p2"], [5.0]))) == [(2.0, 2.5)]
    tick(s, 100.0 + DELAY + LATENESS + 1)
    s.expire()
    assert s.held == 1
    assert s.counts["expired"] == 1  # p1; p2 had joined


def test_expiry_is_fifo_for_labels() -> None:
    s = store()
    s.add_labels(labels(["p1", "p2"], [100.0, 0.0]))
    tick(s, 50.0)  # W = 45: past p2's time, not p1's
    s.expire()
    assert s.pending_labels == 2
    tick(s, 100.0 + LATENESS + 1)
    s.expire()
    assert s.pending_labels == 0
    assert s.counts["unmatched_labels"] == 2


def test_expiry_of_many_entries_crosses_internal_chunks() -> None:
    n = 10_000
    s = store(max_pending=2 * n)
    ids = [f"p{i}" for i in range(n)]
    s.add_predictions(preds(ids, np.arange(n, dtype=np.float64).tolist()))
    tick(s, n + DELAY + LATENESS)
    expired = s.expire()
    assert len(expired) == n
    assert s.counts["expired"] == n
    assert s.held == 1


# -- overflow ------------------------------------------------------------------------------


def test_evict_oldest_keeps_the_newest_and_counts_evictions() -> None:
    s = store(max_pending=3, overflow="evict_oldest")
    for i in range(5):
        s.add_predictions(preds([f"p{i}"], [float(i)]))
    assert s.held == 3
    assert s.counts["evicted"] == 2
    assert s.counts["dropped"] == 0
    j = s.add_labels(labels([f"p{i}" for i in range(5)], [5.0] * 5))
    assert [p for p, _ in joined_pairs(j)] == [2.0, 3.0, 4.0]


def test_drop_new_keeps_the_oldest_and_counts_drops() -> None:
    s = store(max_pending=3, overflow="drop_new")
    for i in range(5):
        s.add_predictions(preds([f"p{i}"], [float(i)]))
    assert s.held == 3
    assert s.counts["dropped"] == 2
    assert s.counts["evicted"] == 0
    j = s.add_labels(labels([f"p{i}" for i in range(5)], [5.0] * 5))
    assert [p for p, _ in joined_pairs(j)] == [0.0, 1.0, 2.0]


def test_evict_oldest_keeps_the_newest_of_one_large_batch() -> None:
    s = store(max_pending=3, overflow="evict_oldest")
    s.add_predictions(preds([f"p{i}" for i in range(5)], [float(i) for i in range(5)]))
    assert s.held == 3
    assert (s.counts["evicted"], s.counts["dropped"]) == (2, 0)
    j = s.add_labels(labels([f"p{i}" for i in range(5)], [5.0] * 5))
    assert [p for p, _ in joined_pairs(j)] == [2.0, 3.0, 4.0]


@pytest.mark.parametrize("overflow", ["evict_oldest", "drop_new"])
@pytest.mark.parametrize("held_before", [0, 2])
def test_overflow_does_not_depend_on_batch_size(
    overflow: Literal["evict_oldest", "drop_new"], held_before: int
) -> None:
    def run(batch: int) -> tuple[dict[str, int], list[float]]:
        s = store(max_pending=3, overflow=overflow)
        if held_before:
            s.add_predictions(
                preds([f"p{100 + i}" for i in range(held_before)], [0.0] * held_before)
            )
        ids = [f"p{i}" for i in range(6)]
        for k in range(0, len(ids), batch):
            s.add_predictions(preds(ids[k : k + batch], [1.0] * len(ids[k : k + batch])))
        j = s.add_labels(labels([f"p{i}" for i in (*range(6), 100, 101)], [2.0] * 8))
        return s.counts, [p for p, _ in joined_pairs(j)]

    assert run(6) == run(1)


def test_label_store_is_bounded_and_evicts_oldest() -> None:
    s = store(max_pending=2)
    s.add_labels(labels(["p1", "p2", "p3"], [1.0, 2.0, 3.0]))
    assert s.pending_labels == 2
    assert s.counts["evicted"] == 1
    assert s.add_predictions(preds(["p1"], [0.0]))[1] is None
    assert joined_pairs(s.add_predictions(preds(["p2"], [0.0]))[1]) == [(2.0, 2.5)]
    assert joined_pairs(s.add_predictions(preds(["p3"], [0.0]))[1]) == [(3.0, 3.5)]


# -- state ---------------------------------------------------------------------------------


def _ops_before(s: JoinStore) -> None:
    # Enough traffic to wrap the ring (capacity 16), with waiting labels and joins held.
    for k in range(4):
        ids = [f"p{10 * k + i}" for i in range(8)]
        s.add_predictions(preds(ids, [10.0 * k + i for i in range(8)]))
        s.add_labels(labels(ids[:3], [10.0 * k + 2] * 3))
        s.add_labels(labels([f"p{500 + k}"], [10.0 * k]))
        s.expire()


def _ops_after(s: JoinStore) -> list[Any]:
    out: list[Any] = []
    for k in range(4, 8):
        ids = [f"p{10 * k + i}" for i in range(8)]
        keep, j = s.add_predictions(preds([*ids, "p31"], [10.0 * k + i for i in range(9)]))
        out += [keep.tolist(), joined_pairs(j)]
        out.append(joined_pairs(s.add_labels(labels([*ids[3:6], "p35", "p502"], [10.0 * k] * 5))))
        out.append(s.expire().tolist())
        out += [s.held, s.pending, s.pending_labels, dict(s.counts)]
    return out


def _plain(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in state.items()}


def test_state_dict_round_trip_gives_identical_subsequent_behaviour() -> None:
    original = store()
    _ops_before(original)
    assert original.held > 0
    assert original.pending_labels > 0
    blob = state_codec.dumps("join", 1, original.state_dict())
    restored = store()
    restored.load_state_dict(state_codec.loads(blob, "join", 1))
    assert _plain(restored.state_dict()) == _plain(original.state_dict())
    assert _ops_after(restored) == _ops_after(original)
    assert _plain(restored.state_dict()) == _plain(original.state_dict())


def test_load_state_dict_of_an_empty_store() -> None:
    s = store()
    s.load_state_dict(store().state_dict())
    assert (s.held, s.pending_labels) == (0, 0)
    s.add_predictions(preds(["p1"], [0.0]))
    assert joined_pairs(s.add_labels(labels(["p1"], [1.0]))) == [(1.0, 1.5)]
