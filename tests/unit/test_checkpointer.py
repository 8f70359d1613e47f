"""The checkpoint steps run in the order ``checkpointer`` lists, and a failed save commits
nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from driftd.config import IngestSettings, JoinSettings, PipelineSettings
from driftd.daemon.abc import Checkpoint, Offsets, RawChunk
from driftd.daemon.checkpoint import MemoryCheckpointStore
from driftd.daemon.checkpointer import Checkpointer
from driftd.daemon.pipeline import Pipeline
from driftd.daemon.sinks import NullDeadLetterSink
from driftd.errors import CheckpointError
from tests.unit.test_pipeline import MODELS, ListSource, pred


class _Steps:
    """Each part of a checkpoint notes its step in one shared list."""

    def __init__(self, fail_save: bool = False) -> None:
        self.done: list[Any] = []
        steps = self

        class Labeled:
            def flush(self) -> None:
                steps.done.append("labeled")

        class Sink(NullDeadLetterSink):
            def flush(self) -> Offsets:
                steps.done.append("dead letters")
                return {"dlq": 5}

        class Store(MemoryCheckpointStore):
            def save(self, pipeline: str, cps: Sequence[Checkpoint]) -> None:
                steps.done.append(("save", [(cp.partition, cp.seq, cp.offsets) for cp in cps]))
                if fail_save:
                    raise CheckpointError("disk full")
                super().save(pipeline, cps)

        class Source(ListSource):
            def commit(self, partition: int, offsets: dict[str, int]) -> None:
                steps.done.append(("commit", partition, offsets))

        self.pipeline = Pipeline(MODELS, IngestSettings(), JoinSettings())
        self.store = Store()
        self.checkpointer = Checkpointer(
            self.pipeline,
            Source([]),
            Sink(),
            self.store,
            PipelineSettings(),
            None,
            Labeled(),  # type: ignore[arg-type]
        )


def test_steps_run_in_order_and_offsets_cover_the_dead_letters() -> None:
    s = _Steps()
    for p in (1, 0):
        s.checkpointer.restore(p)
        s.pipeline.process(RawChunk(p, "mixed", "s", [pred(p)], [0], {"s": 1}))
    s.checkpointer.save()
    offsets = {"s": 1, "dlq": 5}
    assert s.done == [
        "labeled",
        "dead letters",
        ("save", [(0, 1, offsets), (1, 1, offsets)]),
        ("commit", 0, offsets),
        ("commit", 1, offsets),
    ]
    assert s.checkpointer.last_at is not None and not s.checkpointer.due()
    s.done.clear()
    s.checkpointer.save([0])
    assert s.done[2] == ("save", [(0, 2, offsets)])  # each partition's sequence grows


def test_a_failed_save_commits_no_offset() -> None:
    s = _Steps(fail_save=True)
    s.checkpointer.restore(0)
    with pytest.raises(CheckpointError, match="disk full"):
        s.checkpointer.save()
    assert [d if isinstance(d, str) else d[0] for d in s.done] == [
        "labeled",
        "dead letters",
        "save",
    ]
    assert s.checkpointer.last_at is None
