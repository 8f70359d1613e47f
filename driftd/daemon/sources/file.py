"""JSON-lines files (plain or gzip) as a source: replay and the embedded default.

Files are read in order as one mixed stream in partition 0, in large blocks split on newlines.
The resume offset of a file is its byte offset (in the uncompressed stream) plus its line
count, both checkpointed. A line longer than ``max_event_bytes`` is cut to its first
``max_event_bytes + 1`` bytes (so the pipeline dead-letters it as oversized) and the rest of it
is skipped without being held in memory. Empty lines are skipped; a line of other white
space is dead-lettered like any other malformed event.
"""

from __future__ import annotations

import gzip
import io
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from driftd.daemon.abc import Offsets, RawChunk
from driftd.errors import SourceError

BLOCK = 1 << 20
LINE_SUFFIX = "#line"


def _open(path: Path) -> BinaryIO:
    try:
        raw = path.open("rb")
        if raw.read(2) == b"\x1f\x8b":
            raw.seek(0)
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
        raw.seek(0)
        return raw
    except OSError as exc:
        raise SourceError(f"cannot open {path}: {exc}") from exc


class FileSource:
    """Reads files in order; ``follow`` keeps waiting for lines appended to the last one."""

    def __init__(self, paths: Sequence[Path], max_event_bytes: int, follow: bool = False) -> None:
        self.paths = [Path(p) for p in paths]
        self.max_event_bytes = max_event_bytes
        self.follow = follow
        self._file_idx = 0
        self._fh: BinaryIO | None = None
        self._byte = 0  # offset of the first byte not yet returned
        self._line = 0  # lines returned so far (including blank ones)
        self._lines: list[bytes] = []  # complete lines of the last block
        self._next = 0  # index of the next line in _lines to return
        self._tail = b""  # an incomplete line after the last newline read
        self._long: dict[int, int] = {}  # index in _lines -> bytes in the file, for cut lines
        self._skipping = False  # inside an oversized line, dropping until its newline
        self._head = b""  # the first max_event_bytes + 1 bytes of that line
        self._skipped = 0  # bytes of it dropped so far
        self._start: dict[str, int] = {}
        self._start_lines: dict[str, int] = {}

    @property
    def exhausted(self) -> bool:
        """True when every file has been read to its end and ``follow`` is off."""
        return not self.follow and self._file_idx >= len(self.paths)

    def _key(self) -> str:
        return str(self.paths[self._file_idx])

    def seek(self, partition: int, offsets: Offsets) -> None:
        """Resume every file at its checkpointed byte offset and line count."""
        self._start = {str(p): offsets.get(str(p), 0) for p in self.paths}
        self._start_lines = {str(p): offsets.get(str(p) + LINE_SUFFIX, 0) for p in self.paths}
        self._close_file()
        self._file_idx = 0

    def _open_current(self) -> BinaryIO:
        if self._fh is None:
            key = self._key()
            self._fh = _open(self.paths[self._file_idx])
            self._byte = self._start.get(key, 0)
            self._line = self._start_lines.get(key, 0)
            self._lines, self._next, self._tail, self._long = [], 0, b"", {}
            self._skipping = False
            self._skipped = 0
            if self._byte:
                try:
                    self._fh.seek(self._byte)
                except (OSError, EOFError) as exc:
                    raise SourceError(f"cannot seek {key} to byte {self._byte}: {exc}") from exc
        return self._fh

    def _close_file(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def poll(self, timeout_s: float, max_records: int) -> list[RawChunk]:
        """Up to ``max_records`` lines of the current file, as one chunk."""
        while self._file_idx < len(self.paths):
            chunk = self._read(max_records)
            if chunk is not None:
                return [chunk]
            if self.follow and self._file_idx == len(self.paths) - 1:
                time.sleep(min(timeout_s, 0.05))
                return []
            self._close_file()
            self._file_idx += 1
        return []

    def _fill(self, fh: BinaryIO) -> bool:
        """Read blocks until there are complete lines; False when none can be had now."""
        limit = self.max_event_bytes
        while True:
            try:
                block = fh.read(BLOCK)
            except (OSError, EOFError, zlib.error) as exc:
                raise SourceError(
                    f"cannot read {self._key()} after byte {self._byte}: {exc!r}"
                ) from exc
            if not block:
                if self.follow:
                    return False
                if self._skipping:  # the file ends inside an oversized line
                    self._set_lines([self._head], {0: len(self._head) + self._skipped})
                    self._skipping = False
                    return True
                if self._tail:  # a last line without a newline
                    self._set_lines([self._tail], {0: len(self._tail)})
                    self._tail = b""
                    return True
                return False
            if self._skipping:
                nl = block.find(b"\n")
                if nl < 0:
                    self._skipped += len(block)
                    continue
                lines = [self._head]
                long_ = {0: len(self._head) + self._skipped + nl + 1}
                self._skipping = False
                block = block[nl + 1 :]
                parts = block.split(b"\n")
                self._tail = parts.pop()
                self._set_lines(lines + parts, long_)
                return True
            parts = block.split(b"\n")
            if self._tail:
                parts[0] = self._tail + parts[0]
            self._tail = parts.pop()
            if len(self._tail) > limit:  # an over-long line: keep its head, skip the rest
                self._head = self._tail[: limit + 1]
                self._skipped = len(self._tail) - len(self._head)
                self._tail = b""
                self._skipping = True
            if parts:
                self._set_lines(parts, {})
                return True

    def _set_lines(self, lines: list[bytes], long_: dict[int, int]) -> None:
        self._lines, self._next, self._long = lines, 0, long_

    def _read(self, max_records: int) -> RawChunk | None:
        fh = self._open_current()
        limit = self.max_event_bytes
        raws: list[bytes] = []
        positions: list[int] = []
        byte, line = self._byte, self._line
        while len(raws) < max_records:
            if self._next >= len(self._lines) and not self._fill(fh):
                break
            i = self._next
            take = self._lines[i : i + max_records - len(raws)]
            self._next = i + len(take)
            first = line + 1
            line += len(take)
            byte += sum(map(len, take)) + len(take)
            for j, full in self._long.items():  # lines cut to their head: count all bytes
                if i <= j < i + len(take):
                    byte += full - len(take[j - i]) - 1
            if b"" in take or b"\r" in take:  # blank lines (LF or CRLF) are not events
                keep = [k for k, raw in enumerate(take) if raw not in (b"", b"\r")]
                raws.extend(take[k] for k in keep)
                positions.extend(first + k for k in keep)
            else:
                raws.extend(take)
                positions.extend(range(first, line + 1))
        if raws and max(map(len, raws)) > limit:  # lines too long, even inside one block
            raws = [r if len(r) <= limit else r[: limit + 1] for r in raws]
        consumed = (byte, line) != (self._byte, self._line)
        self._byte, self._line = byte, line
        if not consumed:
            return None
        key = self._key()
        resume = {key: byte, key + LINE_SUFFIX: line}
        return RawChunk(0, "mixed", key, raws, positions, resume)

    def commit(self, partition: int, offsets: Offsets) -> None:
        """Files have no broker to report to."""

    def lag(self) -> dict[str, int]:
        """Bytes left in the current plain file (0 for gzip, whose size is unknown)."""
        if self._file_idx >= len(self.paths) or not isinstance(self._fh, io.BufferedReader):
            return {}
        size = self.paths[self._file_idx].stat().st_size
        return {self._key(): max(size - self._byte, 0)}

    def close(self) -> None:
        """Close the open file."""
        self._close_file()
