"""A zombie owner: a partition another instance has taken over (a rebalance this one has not
heard of yet) is dropped at this one's next checkpoint, its stale state unsaved, and the
partitions it still owns are saved; nothing stops the loop."""

from __future__ import annotations

from driftd.config import IngestSettings, JoinSettings, ModelSettings, PipelineSettings
from driftd.daemon.abc import Offsets, RawChunk
from driftd.daemon.checkpoint import MemoryCheckpointStore
from driftd.daemon.checkpointer import Checkpointer
from driftd.daemon.pipeline import Pipeline

MODELS = {"m": ModelSettings(features={"a": "numeric"})}
LINE = (
    b'{"kind":"prediction","id":"%d","model":"m","version":"1","ts":1767225600,'
    b'"features":{"a":1.0},"prediction":1}'
)


class Source:
    def __init__(self) -> None:
        self.committed: dict[int, Offsets] = {}

    def commit(self, partition: int, offsets: Offsets) -> None:
        self.committed[partition] = dict(offsets)


class Sink:
    def flush(self) -> Offsets:
        return {}


def _owner(store: MemoryCheckpointStore) -> tuple[Pipeline, Checkpointer, Source]:
    pipeline = Pipeline(MODELS, IngestSettings(), JoinSettings())
    source = Source()
    cp = Checkpointer(pipeline, source, Sink(), store, PipelineSettings(name="p"))  # type: ignore[arg-type]
    return pipeline, cp, source


def _feed(pipeline: Pipeline, p: int, start: int, n: int) -> None:
    raws = [LINE % i for i in range(start, start + n)]
    pipeline.process(RawChunk(p, "mixed", "s", raws, range(start, start + n), {"s": start + n}))


def test_a_partition_taken_over_is_dropped_and_the_rest_saved() -> None:
    store = MemoryCheckpointStore()
    a, a_cp, a_src = _owner(store)
    for p in (0, 1):
        a_cp.restore(p)
        _feed(a, p, 0, 10)
    a_cp.save()
    # B takes partition 0 over (A is not told yet), replays from A's checkpoint and saves.
    b, b_cp, _ = _owner(store)
    b_cp.restore(0)
    _feed(b, 0, 10, 5)
    b_cp.save()
    # A goes on with both and checkpoints: 0 is refused and dropped, 1 is saved.
    _feed(a, 0, 10, 7)
    _feed(a, 1, 10, 3)
    a_cp.save()
    assert sorted(a.partitions) == [1]
    assert store.load("p", 0).offsets == {"s": 15}  # B's, untouched
    assert store.load("p", 1).offsets == {"s": 13}
    assert a_src.committed[1] == {"s": 13} and a_src.committed[0] == {"s": 10}
    # A's stale report of partition 0 never reached the leader; B's did, once.
    seqs = [(r.partition, r.seq) for r in store.reports("p")]
    assert seqs == [(0, 1), (0, 2), (1, 1), (1, 2)]
