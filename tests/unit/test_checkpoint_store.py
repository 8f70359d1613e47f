"""Checkpoint stores: one contract for every backend, plus what the SQL store promises."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftd.daemon.abc import Checkpoint, CheckpointStore
from driftd.daemon.checkpoint import MemoryCheckpointStore, SqlCheckpointStore
from driftd.db import checkpoint_chunks, make_engine
from driftd.errors import CheckpointError, PartitionLost
from tests.databases import fresh_postgres

CHUNK = 7  # tiny, so that every blob spans several rows


@pytest.fixture(scope="module")
def pg_engine() -> Iterator[sa.Engine]:
    """A fresh PostgreSQL database, migrated; skipped (failed on CI) when unreachable."""
    with fresh_postgres() as url:
        store = SqlCheckpointStore.open(make_engine(url))
        yield store.engine
        store.close()


@pytest.fixture
def pipeline_name() -> str:
    return f"test-{uuid.uuid4().hex[:16]}"


def _sqlite(tmp_path: Path) -> SqlCheckpointStore:
    return SqlCheckpointStore.open(make_engine(f"sqlite:///{tmp_path}/state.db"), chunk_bytes=CHUNK)


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def store(
    request: pytest.FixtureRequest, tmp_path: Path, pipeline_name: str
) -> Iterator[CheckpointStore]:
    if request.param == "memory":
        yield MemoryCheckpointStore()
    elif request.param == "sqlite":
        s = _sqlite(tmp_path)
        yield s
        s.close()
    else:
        s = SqlCheckpointStore(request.getfixturevalue("pg_engine"), chunk_bytes=CHUNK)
        yield s
        s.delete(pipeline_name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_store(
    request: pytest.FixtureRequest, tmp_path: Path, pipeline_name: str
) -> Iterator[SqlCheckpointStore]:
    if request.param == "sqlite":
        s = _sqlite(tmp_path)
        yield s
        s.close()
    else:
        s = SqlCheckpointStore(request.getfixturevalue("pg_engine"), chunk_bytes=CHUNK)
        yield s
        s.delete(pipeline_name)


def cp(partition: int, seq: int, offsets: dict[str, int], blob: bytes = b"") -> Checkpoint:
    return Checkpoint(partition, seq, offsets, blob, created_at=1_700_000_000.0 + seq)


def blob_of(n: int, salt: int = 0) -> bytes:
    return bytes((i * 31 + salt) % 256 for i in range(n))


# -- the contract, on every backend --------------------------------------------------------


def test_nothing_saved_yet(store: CheckpointStore, pipeline_name: str) -> None:
    assert store.load(pipeline_name, 0) is None
    assert store.partitions(pipeline_name) == []


@pytest.mark.parametrize("size", [0, 1, CHUNK, 2 * CHUNK, 100, 5000])
def test_save_load_round_trip(store: CheckpointStore, pipeline_name: str, size: int) -> None:
    saved = cp(3, 1, {"events.jsonl": 120, "events.jsonl#line": 4}, blob_of(size))
    store.save(pipeline_name, [saved])
    assert store.load(pipeline_name, 3) == saved
    assert store.partitions(pipeline_name) == [3]


def test_a_later_save_replaces_the_blob(store: CheckpointStore, pipeline_name: str) -> None:
    store.save(pipeline_name, [cp(0, 1, {"t": 5}, blob_of(100, 1))])
    newer = cp(0, 2, {"t": 9}, blob_of(10, 2))  # fewer chunks than before
    store.save(pipeline_name, [newer])
    assert store.load(pipeline_name, 0) == newer


def test_several_partitions_in_one_save(store: CheckpointStore, pipeline_name: str) -> None:
    cps = [cp(p, 1, {f"t/{p}": 10 * p}, blob_of(20 + p, p)) for p in (2, 0, 1)]
    store.save(pipeline_name, cps)
    assert store.partitions(pipeline_name) == [0, 1, 2]
    for c in cps:
        assert store.load(pipeline_name, c.partition) == c


def test_pipelines_are_isolated(store: CheckpointStore, pipeline_name: str) -> None:
    other = pipeline_name + "-other"
    store.save(pipeline_name, [cp(0, 1, {"t": 1}, b"mine")])
    store.save(other, [cp(0, 7, {"t": 1}, b"theirs"), cp(5, 1, {}, b"")])
    try:
        assert store.load(pipeline_name, 0) == cp(0, 1, {"t": 1}, b"mine")
        assert store.partitions(pipeline_name) == [0]
        assert store.partitions(other) == [0, 5]
    finally:
        if isinstance(store, SqlCheckpointStore):
            store.delete(other)


def test_a_save_over_another_owners_checkpoint_is_refused(
    store: CheckpointStore, pipeline_name: str
) -> None:
    """Owner A took partition 0 at seq 1; owner B took it over and saved seq 2; A, not yet
    told of the rebalance, saves its own seq 2: stale, refused, nothing written."""
    store.save(pipeline_name, [cp(0, 1, {"t": 10}, b"a1"), cp(1, 1, {"t": 5}, b"a1")])
    mine = cp(0, 2, {"t": 20}, b"b2")
    store.save(pipeline_name, [mine])
    with pytest.raises(PartitionLost) as err:
        store.save(pipeline_name, [cp(0, 2, {"t": 30}, b"a2"), cp(1, 2, {"t": 6}, b"a2")])
    assert err.value.partitions == [0]
    assert store.load(pipeline_name, 0) == mine
    assert store.load(pipeline_name, 1) == cp(1, 1, {"t": 5}, b"a1")  # one transaction


def test_saving_nothing_is_a_no_op(store: CheckpointStore, pipeline_name: str) -> None:
    store.save(pipeline_name, [])
    assert store.partitions(pipeline_name) == []


# -- what the SQL store adds ---------------------------------------------------------------


def test_offsets_moving_backwards_are_refused(
    sql_store: SqlCheckpointStore, pipeline_name: str
) -> None:
    first = cp(0, 1, {"t": 100, "u": 5}, blob_of(30))
    sql_store.save(pipeline_name, [first])
    with pytest.raises(CheckpointError, match=r"t: 100 -> 99"):
        sql_store.save(pipeline_name, [cp(0, 2, {"t": 99, "u": 6}, blob_of(8))])
    assert sql_store.load(pipeline_name, 0) == first


def test_equal_offsets_and_new_keys_are_accepted(
    sql_store: SqlCheckpointStore, pipeline_name: str
) -> None:
    sql_store.save(pipeline_name, [cp(0, 1, {"t": 100})])
    later = cp(0, 2, {"t": 100, "dlq:x": 3})
    sql_store.save(pipeline_name, [later])
    assert sql_store.load(pipeline_name, 0) == later


@pytest.mark.parametrize("first_exists", [False, True])
def test_a_failing_partition_saves_none_of_the_batch(
    sql_store: SqlCheckpointStore, pipeline_name: str, first_exists: bool
) -> None:
    old0 = cp(0, 1, {"t": 10}, blob_of(20, 1))
    old1 = cp(1, 1, {"t": 50}, blob_of(20, 2))
    sql_store.save(pipeline_name, [old0, old1] if first_exists else [old1])
    with pytest.raises(CheckpointError):
        # Partition 0 is fine; partition 1's offsets move backwards.
        sql_store.save(
            pipeline_name, [cp(0, 2, {"t": 20}, blob_of(40, 3)), cp(1, 2, {"t": 49}, b"x")]
        )
    assert sql_store.load(pipeline_name, 0) == (old0 if first_exists else None)
    assert sql_store.load(pipeline_name, 1) == old1
    assert sql_store.partitions(pipeline_name) == ([0, 1] if first_exists else [1])


def test_a_missing_chunk_is_detected_on_load(
    sql_store: SqlCheckpointStore, pipeline_name: str
) -> None:
    sql_store.save(pipeline_name, [cp(0, 1, {"t": 1}, blob_of(3 * CHUNK))])
    with sql_store.engine.begin() as conn:
        conn.execute(
            sa.delete(checkpoint_chunks).where(
                (checkpoint_chunks.c.pipeline == pipeline_name) & (checkpoint_chunks.c.chunk == 1)
            )
        )
    with pytest.raises(CheckpointError, match="expected 21"):
        sql_store.load(pipeline_name, 0)


def test_info_and_delete(sql_store: SqlCheckpointStore, pipeline_name: str) -> None:
    sql_store.save(pipeline_name, [cp(1, 4, {"t": 3}, blob_of(50)), cp(0, 2, {}, b"ab")])
    info = sql_store.info(pipeline_name)
    assert [(i["partition"], i["seq"], i["offsets"], i["bytes"]) for i in info] == [
        (0, 2, {}, 2),
        (1, 4, {"t": 3}, 50),
    ]
    sql_store.delete(pipeline_name)
    assert sql_store.partitions(pipeline_name) == []
    assert sql_store.load(pipeline_name, 1) is None


def test_sqlite_checkpoints_survive_a_new_store_on_the_same_file(tmp_path: Path) -> None:
    saved = cp(0, 1, {"t": 7}, blob_of(64))
    first = _sqlite(tmp_path)
    first.save("p", [saved])
    first.close()
    second = _sqlite(tmp_path)  # migrations run again: they must be idempotent
    try:
        assert second.load("p", 0) == saved
    finally:
        second.close()
