"""Complete lines of a byte stream, read in large blocks and split on newlines.

A line longer than ``limit`` keeps only its first ``limit + 1`` bytes (so the pipeline
dead-letters it as oversized) and the rest is skipped without being held in memory. Bytes after
the last newline are held back: they are a line only once its newline arrives, or when the
caller says the stream is final (``flush``).
"""

from __future__ import annotations

import zlib
from typing import BinaryIO

from driftd.errors import SourceError


class LineReader:
    """Lines of ``fh`` with the number of bytes each one spans in the stream."""

    def __init__(self, fh: BinaryIO, limit: int, block: int, name: str) -> None:
        self.fh = fh
        self.limit = limit
        self.block = block
        self.name = name  # for errors
        self._lines: list[bytes] = []  # complete lines of the last block
        self._next = 0  # index of the next line in _lines to return
        self._long: dict[int, int] = {}  # index in _lines -> bytes in the stream, for cut lines
        self._tail = b""  # an incomplete line after the last newline read
        self._skipping = False  # inside an oversized line, dropping until its newline
        self._head = b""  # the first limit + 1 bytes of that line
        self._skipped = 0  # bytes of it dropped so far

    @property
    def has_lines(self) -> bool:
        """True when complete lines are waiting to be taken."""
        return self._next < len(self._lines)

    @property
    def pending(self) -> int:
        """Bytes read of an unterminated last line."""
        return len(self._head) + self._skipped if self._skipping else len(self._tail)

    def fill(self) -> bool:
        """Read blocks until there are complete lines; False at the end of the data for now."""
        limit = self.limit
        while True:
            try:
                block = self.fh.read(self.block)
            except (OSError, EOFError, zlib.error) as exc:
                raise SourceError(f"cannot read {self.name}: {exc!r}") from exc
            if not block:
                return False
            if self._skipping:
                nl = block.find(b"\n")
                if nl < 0:
                    self._skipped += len(block)
                    continue
                lines = [self._head]
                long_ = {0: len(self._head) + self._skipped + nl + 1}
                self._skipping = False
                parts = block[nl + 1 :].split(b"\n")
                self._tail = parts.pop()
                self._set(lines + parts, long_)
                self._cut_tail(limit)
                return True
            parts = block.split(b"\n")
            if self._tail:
                parts[0] = self._tail + parts[0]
            self._tail = parts.pop()
            self._cut_tail(limit)
            if parts:
                self._set(parts, {})
                return True

    def _cut_tail(self, limit: int) -> None:
        if len(self._tail) > limit:  # an over-long line: keep its head, skip the rest
            self._head = self._tail[: limit + 1]
            self._skipped = len(self._tail) - len(self._head)
            self._tail = b""
            self._skipping = True

    def flush(self) -> bool:
        """The stream is final: its unterminated last line becomes a line; False if none."""
        if self._skipping:
            self._set([self._head], {0: len(self._head) + self._skipped})
            self._skipping, self._head, self._skipped = False, b"", 0
            return True
        if self._tail:
            self._set([self._tail], {0: len(self._tail)})
            self._tail = b""
            return True
        return False

    def _set(self, lines: list[bytes], long_: dict[int, int]) -> None:
        self._lines, self._next, self._long = lines, 0, long_

    def take(self, n: int) -> tuple[list[bytes], int]:
        """Up to ``n`` waiting lines and the bytes they span (newlines included)."""
        i = self._next
        lines = self._lines[i : i + n]
        self._next = i + len(lines)
        nbytes = sum(map(len, lines)) + len(lines)
        for j, full in self._long.items():  # lines cut to their head (or final): real size
            if i <= j < i + len(lines):
                nbytes += full - len(lines[j - i]) - 1
        return lines, nbytes
