"""IdIndex: an exact id -> position map, whatever the hashes, and small per entry."""

from __future__ import annotations

import random
import tracemalloc

import numpy as np
import pytest

from driftd.contracts.columns import PredictionColumns
from driftd.daemon import idindex
from driftd.daemon.idindex import IdIndex, hashes
from driftd.daemon.join import JoinStore


def _stored(ids: list[str], size: int = 64) -> np.ndarray:
    out = np.empty(size, dtype=object)
    out[: len(ids)] = ids
    return out


def test_ids_with_one_hash_are_told_apart_by_the_ids() -> None:
    ids = [f"id{i}" for i in range(40)]
    stored = _stored(ids)
    keys = np.zeros(len(ids), dtype=np.int64)  # every id collides
    index = IdIndex()
    index.add(keys, np.arange(40), stored)
    assert index.find(keys, ids, stored).tolist() == list(range(40))
    assert index.find(np.zeros(2, np.int64), ["nope", "id"], stored).tolist() == [-1, -1]
    index.remove(keys[:10], np.arange(10))
    stored[:10] = None
    assert index.find(keys, ids, stored).tolist() == [-1] * 10 + list(range(10, 40))
    assert len(index) == 30


def test_remove_of_an_absent_entry_raises() -> None:
    index = IdIndex()
    index.add(hashes(["a"]), np.array([0]), _stored(["a"]))
    with pytest.raises(KeyError, match="not in the table"):
        index.remove(hashes(["b"]), np.array([1]))


def test_shift_renumbers_positions_of_an_unrolled_ring() -> None:
    ids = ["a", "b", "c"]
    ring = _stored([], 4)
    ring[[2, 3, 0]] = ids  # head at 2: a, b, c wrapped round
    index = IdIndex()
    index.add(hashes(ids), np.array([2, 3, 0]), ring)
    index.shift(2, 4)
    assert index.find(hashes(ids), ids, _stored(ids, 8)).tolist() == [0, 1, 2]


@pytest.mark.parametrize("buckets", [None, 1, 7], ids=["str-hash", "one-hash", "seven-hashes"])
def test_fifo_churn_matches_a_dict(buckets: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches in, oldest out, as the join store does, with growth; checked against a dict."""
    rng = random.Random(buckets)

    def keys(ids: list[str]) -> np.ndarray:
        h = hashes(ids)
        return h if buckets is None else h % buckets

    monkeypatch.setattr(idindex, "hashes", keys)  # the table rehashes its ids when it grows

    cap = 4096
    ring = np.empty(cap, dtype=object)
    head, size, serial = 0, 0, 0
    model: dict[str, int] = {}
    index = IdIndex(16)
    for _ in range(60):
        n = rng.randrange(0, 120 if buckets != 1 else 20)
        ids = [f"x{serial + i}" for i in range(n)]
        serial += n
        pos = (head + size + np.arange(n)) % cap
        ring[pos] = ids
        index.add(keys(ids), pos, ring)
        model.update(zip(ids, pos.tolist(), strict=True))
        size += n
        gone = rng.randrange(0, size + 1)
        old = (head + np.arange(gone)) % cap
        old_ids = ring[old].tolist()
        index.remove(keys(old_ids), old)
        ring[old] = None
        for id_ in old_ids:
            del model[id_]
        head, size = (head + gone) % cap, size - gone
        probe = [f"x{rng.randrange(0, serial + 10)}" for _ in range(50)] + list(model)[:20]
        assert index.find(keys(probe), probe, ring).tolist() == [model.get(i, -1) for i in probe]
        assert len(index) == len(model)


def test_join_store_joins_right_when_every_id_has_the_same_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def one_hash(ids: object) -> np.ndarray:
        return np.full(len(ids), 12345, dtype=np.int64)  # type: ignore[arg-type]

    from tests.unit.test_join import labels, preds

    monkeypatch.setattr("driftd.daemon.join.hashes", one_hash)
    monkeypatch.setattr(idindex, "hashes", one_hash)
    s = JoinStore(1, 1, 10.0, 5.0, 1000, "evict_oldest", 16, 1000.0)
    ids = [f"p{i}" for i in range(1, 41)]
    s.add_predictions(preds(ids, [float(i) for i in range(1, 41)]))  # grows the ring
    keep, _ = s.add_predictions(preds(["p3", "p41"], [41.0, 41.0]))
    assert keep.tolist() == [1] and s.counts["duplicates"] == 1
    j = s.add_labels(labels(["p35", "p2", "p99"], [42.0, 42.0, 42.0], [1.0, 2.0, 3.0]))
    assert j is not None
    # p2 is more than 10 s older than its label and p99 is unknown: both wait.
    assert list(zip(j.ids, j.prediction.tolist(), j.label.tolist(), strict=True)) == [
        ("p35", 35.0, 1.0)
    ]
    assert s.pending_labels == 2
    _, j = s.add_predictions(preds(["p99"], [40.0]))
    assert j is not None and j.ids == ["p99"] and j.label.tolist() == [3.0]


N_MEMORY = 100_000


def test_the_index_costs_at_most_40_bytes_per_pending_prediction() -> None:
    """The store's own allocations beyond its columns: the id index (a dict cost ~90 B)."""
    s = JoinStore(20, 2, 1e12, 60.0, 10 * N_MEMORY, "evict_oldest")
    rng = np.random.default_rng(0)
    batches = []
    for lo in range(0, N_MEMORY, 5000):
        ids = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(lo, lo + 5000)]
        batches.append(
            PredictionColumns(
                ids=ids,
                version=np.zeros(5000, np.int32),
                ts=1.7e9 + np.arange(lo, lo + 5000) / 50.0,
                numeric=rng.standard_normal((5000, 20)),
                categorical=np.zeros((5000, 2), np.int32),
                prediction=np.zeros(5000),
                score=np.zeros(5000),
                latency_ms=np.zeros(5000),
                error=np.zeros(5000, np.bool_),
            )
        )
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for cols in batches:
            s.add_predictions(cols)
        kept = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    columns = sum(c.nbytes for c in s._columns())
    assert s.pending == N_MEMORY
    assert (kept - columns) / N_MEMORY <= 40
