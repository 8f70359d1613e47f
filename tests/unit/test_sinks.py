"""Dead-letter sinks: the JSON-lines file, exactly once across restarts."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from driftd.contracts.events import DeadLetter, Position
from driftd.daemon.sinks import FileDeadLetterSink, NullDeadLetterSink, dead_letter_record


def letter(i: int, raw: bytes | None = None) -> DeadLetter:
    return DeadLetter(
        raw=raw if raw is not None else f'{{"id": "bad-{i}"'.encode(),
        position=Position("events.jsonl", 0, i),
        reason="malformed_json",
        detail=f"detail {i}",
    )


def lines(path: Path) -> list[dict[str, Any]]:
    return [msgspec.json.decode(ln) for ln in path.read_bytes().splitlines()]


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[FileDeadLetterSink]:
    s = FileDeadLetterSink(tmp_path / "sub" / "x.dlq.jsonl")
    yield s
    s.close()


def test_records_hold_position_reason_and_raw_text(sink: FileDeadLetterSink) -> None:
    sink.write([letter(1), letter(2)])
    sink.flush()
    assert lines(sink.path) == [
        {
            "source": "events.jsonl",
            "partition": 0,
            "offset": i,
            "reason": "malformed_json",
            "detail": f"detail {i}",
            "raw": f'{{"id": "bad-{i}"',
        }
        for i in (1, 2)
    ]


def test_raw_that_is_not_utf8_goes_to_raw_base64() -> None:
    raw = b'{"id": "\xff\xfe"}'
    rec = dead_letter_record(letter(1, raw))
    assert "raw" not in rec
    assert base64.b64decode(rec["raw_base64"]) == raw


def test_flush_returns_the_file_size_under_the_sink_key(sink: FileDeadLetterSink) -> None:
    assert sink.flush() == {sink.key: 0}
    sink.write([letter(1)])
    first = sink.flush()
    assert first == {sink.key: sink.path.stat().st_size}
    assert first[sink.key] > 0
    sink.write([letter(2), letter(3)])
    second = sink.flush()
    assert second[sink.key] == sink.path.stat().st_size > first[sink.key]


def test_restore_truncates_to_the_checkpointed_size_and_appends_after_it(
    sink: FileDeadLetterSink,
) -> None:
    sink.write([letter(1), letter(2)])
    checkpoint = sink.flush()
    sink.write([letter(3)])
    sink.flush()
    sink.write([letter(4)])  # not even flushed when the "crash" happens
    sink.restore(checkpoint)
    assert sink.path.stat().st_size == checkpoint[sink.key]
    sink.write([letter(5)])
    sink.flush()
    assert [rec["offset"] for rec in lines(sink.path)] == [1, 2, 5]


def test_restore_in_a_new_process_after_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "x.dlq.jsonl"
    first = FileDeadLetterSink(path)
    first.write([letter(1)])
    checkpoint = first.flush()
    first.write([letter(2)])
    first.close()  # written after the checkpoint
    second = FileDeadLetterSink(path)
    second.restore(checkpoint)
    second.write([letter(3)])
    second.close()
    assert [rec["offset"] for rec in lines(path)] == [1, 3]


def test_restore_without_a_checkpoint_empties_the_file(sink: FileDeadLetterSink) -> None:
    sink.write([letter(1)])
    sink.flush()
    sink.restore({})
    assert sink.path.read_bytes() == b""
    # Another sink's offsets in the same checkpoint do not count.
    sink.write([letter(2)])
    sink.flush()
    sink.restore({"dlq:/elsewhere.jsonl": 10_000})
    assert sink.path.read_bytes() == b""


def test_restore_never_grows_the_file(sink: FileDeadLetterSink) -> None:
    sink.write([letter(1)])
    size = sink.flush()[sink.key]
    sink.restore({sink.key: size + 100})
    assert sink.path.stat().st_size == size


def test_null_sink_keeps_or_drops() -> None:
    keep = NullDeadLetterSink()
    keep.write([letter(1)])
    assert keep.letters == [letter(1)]
    assert keep.flush() == {}
    drop = NullDeadLetterSink(keep=False)
    drop.write([letter(1)])
    assert drop.letters == []
