"""Poison events: any error decoding one event dead-letters it; a failing chunk saves nothing."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from driftd.config import IngestSettings, JoinSettings, PipelineSettings
from driftd.contracts.events import DecodeFailed, classify, decode_label
from driftd.daemon.abc import RawChunk
from driftd.daemon.checkpoint import MemoryCheckpointStore
from driftd.daemon.pipeline import ChunkOutcome, Pipeline
from driftd.daemon.runner import Runner
from driftd.daemon.sinks import NullDeadLetterSink
from tests.unit.test_pipeline import MODELS, ListSource, label, pred, process

DEEP = b"[" * 1000 + b"]" * 1000


def deep_feature(i: int) -> bytes:
    """A prediction whose feature x is 1,000 nested arrays (2.6 KB): msgspec recurses out."""
    return pred(i).replace(b'"x":' + msgspec.json.encode(float(i)), b'"x":' + DEEP)


def test_deeply_nested_feature_is_dead_lettered_and_the_rest_is_counted() -> None:
    p = Pipeline(MODELS, IngestSettings(), JoinSettings())
    raws = [pred(1), deep_feature(2), pred(3), label(1), label(3)]
    assert b"[[[[" in raws[1] and len(raws[1]) > 2000
    out = process(p, raws)
    assert [(d.position.offset, d.reason) for d in out.dead_letters] == [(11, "malformed_json")]
    assert "nested too deeply" in out.dead_letters[0].detail
    assert p.summary()["models"]["m"]["joined"] == 2


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (pred(2).replace(b'"p2"', DEEP), "schema"),  # an id must be a string: no recursion
        (b'{"kind":"label","x":' + DEEP + b"}", "schema"),
        (b'{"id":"p2","model":"m","ts":1,"label":' + DEEP + b"}", "malformed_json"),
        (b"[" + DEEP + b"]", "schema"),  # an event must be an object
    ],
    ids=["id", "unknown-field", "label-without-kind", "top-level"],
)
def test_deep_nesting_anywhere_is_dead_lettered(bad: bytes, reason: str) -> None:
    out = process(Pipeline(MODELS, IngestSettings(), JoinSettings()), [pred(1), bad, pred(3)])
    assert [(d.position.offset, d.reason) for d in out.dead_letters] == [(11, reason)]
    assert out.join_deltas["m"]["predictions"] == 2


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"kind":"label","id":"\xff","model":"m","ts":1,"label":1}', "not_utf8"),
        (b'{"kind":"label","id":"a","model":"m","ts":1,"label":1,"x":"\xc3"}', "not_utf8"),
        (b'{"kind":"label","id":"a","model":"m","ts":1,"label":' + DEEP + b"}", "schema"),
        (b'{"kind":"label","id":"a"', "malformed_json"),
    ],
    ids=["bad-utf8-known-field", "bad-utf8-unknown-field", "deep", "truncated"],
)
def test_decode_functions_classify_by_the_input(raw: bytes, reason: str) -> None:
    """The reason depends on what the bytes are, not on one msgspec version's exception."""
    with pytest.raises(DecodeFailed) as info:
        decode_label(raw)
    assert info.value.reason == reason


def test_classify_names_not_utf8_whatever_error_the_decoder_raised() -> None:
    raw = b'{"a":"\xff"}'
    for exc in (msgspec.DecodeError("Invalid UTF-8 encoded string"), ValueError("odd")):
        assert classify(exc, raw).reason == "not_utf8"
    assert classify(msgspec.DecodeError("Input data was truncated"), b"{").reason == (
        "malformed_json"
    )
    assert classify(RecursionError("deep"), b"[[").reason == "malformed_json"
    odd = classify(ZeroDivisionError("x"), b"{}")
    assert odd.reason == "malformed_json" and "ZeroDivisionError" in odd.detail


class _FailsOnSecondChunk(Pipeline):
    """Applies half of its second chunk, then raises: a bug in the apply path."""

    def process(self, chunk: RawChunk) -> ChunkOutcome:
        if chunk.positions[0] == 2:
            self.partition(chunk.partition).consumed += 1  # half applied
            raise RuntimeError("bug while applying a chunk")
        return super().process(chunk)


def test_an_exception_while_applying_a_chunk_saves_no_checkpoint() -> None:
    store = MemoryCheckpointStore()
    chunks = [
        RawChunk(0, "mixed", "s", [pred(1), pred(2)], [0, 1], {"s": 2}),
        RawChunk(0, "mixed", "s", [pred(3), pred(4)], [2, 3], {"s": 4}),
    ]
    p = _FailsOnSecondChunk(MODELS, IngestSettings(), JoinSettings())
    runner = Runner(p, ListSource(chunks), NullDeadLetterSink(), store, PipelineSettings())
    runner.assign([0])
    runner.step()
    runner.checkpoint()
    saved = store.load(PipelineSettings().name, 0)
    assert saved is not None and saved.offsets == {"s": 2}
    with pytest.raises(RuntimeError, match="bug while applying"):
        runner.run()
    after = store.load(PipelineSettings().name, 0)
    assert after is not None
    assert (after.seq, after.offsets) == (saved.seq, saved.offsets)  # nothing half-applied saved
    fresh = Pipeline(MODELS, IngestSettings(), JoinSettings())
    fresh.restore(0, after.blob)
    assert fresh.summary()["consumed"] == 2


def _unused(*_: Any) -> None: ...
