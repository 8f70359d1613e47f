"""JoinStore cases a mutation run found unchecked: a waiting label joined when its prediction
arrives, a restore bigger than the initial capacity, and the time guard's state in a checkpoint."""

from __future__ import annotations

import math

import numpy as np

from driftd.daemon.join import JoinStore
from driftd.daemon.timeguard import TimeGuard
from tests.unit.test_join import labels, preds

HOUR = 3600.0


def store(guard: TimeGuard | None = None) -> JoinStore:
    return JoinStore(1, 1, 10.0, 5.0, 1000, "evict_oldest", 16, 1000.0, guard=guard)


def test_a_waiting_label_joins_with_its_own_time_value_and_id() -> None:
    s = store()
    assert s.add_labels(labels(["p1", "p2"], [105.0, 106.0], [1.0, 0.0])) is None
    _, joined = s.add_predictions(preds(["p3", "p2", "p1"], [100.0, 101.0, 102.0]))
    assert joined is not None
    assert joined.ids == ["p2", "p1"]
    assert joined.label_ts.tolist() == [106.0, 105.0]
    assert joined.label.tolist() == [0.0, 1.0]
    assert joined.ts.tolist() == [101.0, 102.0]
    assert joined.prediction.tolist() == [2.0, 1.0]


def test_a_restore_larger_than_the_initial_capacity_keeps_every_entry() -> None:
    s = store()
    ids = [f"p{i}" for i in range(1, 101)]
    s.add_predictions(preds(ids, [195.0 + 0.05 * i for i in range(100)]))
    restored = store()
    restored.load_state_dict(s.state_dict())
    assert restored.held == 100
    joined = restored.add_labels(labels(ids, [200.0] * 100, [1.0] * 100))
    assert joined is not None and joined.ids == ids
    assert joined.prediction.tolist() == [float(i) for i in range(1, 101)]


def _guarded_after_a_jump() -> JoinStore:
    s = store(TimeGuard(HOUR, 0.0))
    s.add_predictions(preds(["p1"], [1_000.0]))
    refused = s.screen(np.array([1_000.0 + 3 * HOUR]), ["p2"], None)
    assert [r[1] for r in refused] == ["future_timestamp"]
    return s


def test_the_time_guard_run_is_kept_in_the_checkpoint() -> None:
    s = _guarded_after_a_jump()
    state = s.state_dict()
    assert state["guard"]["run_ids"] == ["p2"]
    restored = store(TimeGuard(HOUR, 0.0))
    restored.load_state_dict(state)
    assert restored.guard is not None and restored.guard.state_dict() == state["guard"]


def test_checkpoints_with_and_without_a_guard_load_either_way() -> None:
    # an older checkpoint (no guard state) into a guarded store: the guard starts fresh
    plain = store()
    plain.add_predictions(preds(["p1"], [1_000.0]))
    guarded = store(TimeGuard(HOUR, 0.0))
    guarded.load_state_dict({**plain.state_dict(), "guard": None})
    assert guarded.guard is not None
    fresh = guarded.guard.state_dict()
    assert math.isnan(fresh["run_ts"]) and fresh["run_ids"] == []
    # a guarded checkpoint into a store without a guard
    unguarded = store()
    unguarded.load_state_dict(_guarded_after_a_jump().state_dict())
    assert unguarded.guard is None and unguarded.held == 1


def test_each_repeated_waiting_label_counts_as_a_duplicate() -> None:
    s = store()
    s.add_labels(labels(["p1", "p2"], [105.0, 106.0], [1.0, 0.0]))
    s.add_labels(labels(["p1"], [107.0], [1.0]))
    s.add_labels(labels(["p2", "p1"], [108.0, 108.0], [0.0, 1.0]))
    assert s.counts["duplicates"] == 3
    assert s.pending_labels == 2


def test_a_repeat_of_the_prediction_held_in_the_first_slot_is_a_duplicate() -> None:
    # The id index finds it at ring position 0: a check for "found" must accept position 0.
    s = store()
    keep, _ = s.add_predictions(preds(["p7"], [0.0]))
    assert keep.tolist() == [0]
    keep, _ = s.add_predictions(preds(["p7"], [1.0]))
    assert keep.tolist() == []
    assert s.held == 1
    assert s.counts["duplicates"] == 1 and s.counts["predictions"] == 1
