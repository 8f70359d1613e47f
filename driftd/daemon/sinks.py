"""Dead-letter sinks: a JSON-lines file (replay, embedded default) and ``<topic>.dlq`` topics.

A dead letter keeps the raw bytes, the source position and the reason. The file sink is
exactly-once across crashes: its size is checkpointed, and a restart truncates what was
written after the checkpoint. The Kafka sink is at-least-once: records carry their source
position as key and headers, so a reader can drop the rare duplicate after a crash.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from driftd.contracts.events import DeadLetter
from driftd.daemon.abc import Offsets

_enc = msgspec.json.Encoder()


def dead_letter_record(d: DeadLetter) -> dict[str, Any]:
    """A dead letter as a JSON-able dict; raw is text when it is UTF-8, else base64."""
    rec: dict[str, Any] = {
        "source": d.position.source,
        "partition": d.position.partition,
        "offset": d.position.offset,
        "reason": d.reason,
        "detail": d.detail,
    }
    try:
        rec["raw"] = d.raw.decode("utf-8")
    except UnicodeDecodeError:
        rec["raw_base64"] = base64.b64encode(d.raw).decode("ascii")
    return rec


class FileDeadLetterSink:
    """Appends dead letters to a ``.dlq.jsonl`` file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("ab")
        self.key = f"dlq:{self.path}"

    def write(self, letters: Sequence[DeadLetter]) -> None:
        """Append the letters (buffered until flush)."""
        if letters:
            self._fh.write(b"".join(_enc.encode(dead_letter_record(d)) + b"\n" for d in letters))

    def flush(self) -> Offsets:
        """fsync the file; its size is the offset to checkpoint."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return {self.key: self._fh.tell()}

    def restore(self, offsets: Offsets) -> None:
        """Cut the file back to the checkpointed size (all of it when there is none)."""
        size = offsets.get(self.key, 0)
        self._fh.flush()
        if self.path.stat().st_size > size:
            os.truncate(self.path, size)
        self._fh.seek(0, os.SEEK_END)

    def close(self) -> None:
        """Flush and close."""
        self.flush()
        self._fh.close()


class NullDeadLetterSink:
    """Keeps dead letters in memory (tests) or drops them when ``keep`` is False."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.letters: list[DeadLetter] = []

    def write(self, letters: Sequence[DeadLetter]) -> None:
        """Keep the letters."""
        if self.keep:
            self.letters.extend(letters)

    def flush(self) -> Offsets:
        """Nothing to make durable."""
        return {}

    def restore(self, offsets: Offsets) -> None:
        """Nothing to undo."""

    def close(self) -> None:
        """Nothing to release."""
