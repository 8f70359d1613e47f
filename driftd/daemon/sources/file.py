"""JSON-lines files (plain or gzip) as a source: replay and the embedded default.

Files are read in order as one mixed stream in partition 0, in large blocks split on newlines
(``file_lines``). Empty lines are skipped; a line of other white space is dead-lettered like any
other malformed event. A last line without its newline is never consumed: it is read once its
newline arrives, and a file read to its end leaves it unread, logged and listed in
``unterminated``. Only a file that will get no more data (rotated away) gives its unterminated
last line to the pipeline as it is.

A path is followed across rotations (``file_identity``): when it names a new file (rename
rotation) or its file was truncated (copytruncate), the rest of the previous file is read first
when it is still there (the file still open, or a file beside the path with the same inode or
first bytes), then the new file from its start; each change is logged and counted.
"""

from __future__ import annotations

import gzip
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from driftd.daemon.abc import Lag, Offsets, PartitionOwner, RawChunk
from driftd.daemon.sources import file_identity as ident
from driftd.daemon.sources.file_identity import LINE_SUFFIX, Change, Cursor
from driftd.daemon.sources.file_lines import LineReader
from driftd.errors import SourceError

__all__ = ["BLOCK", "LINE_SUFFIX", "ROTATE_WAIT_S", "FileSource", "Unterminated"]

BLOCK = 1 << 20
ROTATE_WAIT_S = 5.0
"""How long a renamed file is still read after the path names a new one (fluent-bit's
``Rotate_Wait``): a writer appends to the old file until it reopens the path."""

log = logging.getLogger("driftd.source.file")


@dataclass(frozen=True, slots=True)
class Unterminated:
    """A last line without its newline, left unread at the end of a file."""

    file: str
    byte: int  # where it starts in the file
    size: int  # bytes of it read so far


@dataclass(slots=True)
class _Open:
    """The file being read for the current path (the path's own, or its rotated-away one)."""

    path: Path
    raw: BinaryIO
    plain: bool
    reader: LineReader
    at_end: bool = False  # the last read found no more data


def _open(path: Path, limit: int) -> _Open:
    """Open ``path`` at its start, as gzip when it starts with the gzip magic."""
    try:
        raw: BinaryIO = path.open("rb")
    except OSError as exc:
        raise SourceError(f"cannot open {path}: {exc}") from exc
    try:
        plain = raw.read(2) != b"\x1f\x8b"
        raw.seek(0)
    except OSError as exc:
        raw.close()
        raise SourceError(f"cannot read {path}: {exc}") from exc
    fh: BinaryIO = raw if plain else gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
    return _Open(path, raw, plain, LineReader(fh, limit, BLOCK, str(path)))


def _seek(f: _Open, at: int) -> _Open:
    """Move to uncompressed byte ``at`` (a gzip file gets there by decompressing)."""
    if at:
        try:
            f.reader.fh.seek(at)
        except (OSError, EOFError) as exc:
            f.raw.close()
            raise SourceError(f"cannot seek {f.path} to byte {at}: {exc}") from exc
    return f


class FileSource:
    """Reads files in order; ``follow`` keeps waiting for lines appended to the last one.

    ``on_change`` is called with ``"rotated"`` or ``"truncated"`` each time a path is found
    to name a new file or a truncated one (the metrics count them).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        max_event_bytes: int,
        follow: bool = False,
        *,
        rotate_wait_s: float = ROTATE_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[Change], object] | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.max_event_bytes = max_event_bytes
        self.follow = follow
        self.rotate_wait_s = rotate_wait_s
        self.clock = clock
        self.on_change = on_change
        self.unterminated: dict[str, Unterminated] = {}  # by path, at the end of the last pass
        self._file_idx = 0
        self._start: Offsets = {}
        self._cur = Cursor()
        self._f: _Open | None = None
        self._final = False  # the open file gets no more data: its last line is taken as is
        self._switch = False  # start the path's next generation before reading on
        self._renamed_at: float | None = None  # when a live rename was first seen

    @property
    def exhausted(self) -> bool:
        """True when every file has been read to its end and ``follow`` is off."""
        return not self.follow and self._file_idx >= len(self.paths)

    def bind(self, owner: PartitionOwner) -> None:
        """A file source is one partition (0), assigned at once."""
        owner.assign([0])

    def _key(self) -> str:
        return str(self.paths[self._file_idx])

    def seek(self, partition: int, offsets: Offsets) -> None:
        """Resume every file where its checkpoint keys say (see ``file_identity``)."""
        self._start = dict(offsets)
        self._close_file()
        self._file_idx = 0
        self._final, self._switch, self._renamed_at = False, False, None

    # -- opening and following a path ----------------------------------------------------
    def _current(self) -> _Open:
        if self._switch:
            self._next_generation()
        if self._f is None:
            self._open_path()
        assert self._f is not None
        return self._f

    def _open_path(self) -> None:
        """Open the current path where its cursor stands, after checking it names that file."""
        path, cur = self.paths[self._file_idx], ident.decode(self._key(), self._start)
        f = _open(path, self.max_event_bytes)
        st = os.fstat(f.raw.fileno())
        kind = ident.change(cur, st, f.raw.fileno(), f.plain)
        self._final, self._switch, self._renamed_at = False, False, None
        if kind is None:
            self._f = _seek(f, cur.offset)
            self._cur = ident.with_fingerprint(ident.adopt(cur, st.st_ino), f.raw.fileno())
            return
        self._cur = cur
        previous = ident.find_previous(path, cur, st)
        self._note(kind, path, previous, "while stopped")
        if previous is not None:
            f.raw.close()
            self._f = _seek(_open(previous, self.max_event_bytes), cur.offset)
            self._final = True
        else:
            self._f = f
            self._cur = cur.next_generation(st.st_ino)
            self._cur = ident.with_fingerprint(self._cur, f.raw.fileno())

    def _next_generation(self) -> None:
        """Read the path's current file from its start, as the next generation."""
        self._close_file()
        path = self.paths[self._file_idx]
        self._f = _open(path, self.max_event_bytes)
        cur = self._cur.next_generation(os.fstat(self._f.raw.fileno()).st_ino)
        self._cur = ident.with_fingerprint(cur, self._f.raw.fileno())
        self._final, self._switch, self._renamed_at = False, False, None

    def _watch(self, f: _Open) -> bool:
        """At the end of a followed file: True when it is now final (rotated or truncated)."""
        path = self.paths[self._file_idx]
        try:
            st = path.stat()
        except FileNotFoundError:  # removed, or renamed and not created again yet
            return False
        own = os.fstat(f.raw.fileno())
        if not os.path.samestat(st, own):  # renamed away: drain it a while, then move on
            now = self.clock()
            if self._renamed_at is None:
                self._renamed_at = now
                f.path = ident.renamed_to(path.parent, own) or f.path  # for positions
                self._note("rotated", path, f.path, "while following")
            return now - self._renamed_at >= self.rotate_wait_s
        kind = ident.change(self._cur, own, f.raw.fileno(), f.plain)
        if kind is None:
            return False
        copy = ident.find_previous(path, self._cur, own)
        self._note(kind, path, copy, "while following")
        if copy is not None:  # read the lines written before the truncation from the copy
            self._close_file()
            self._f = _seek(_open(copy, self.max_event_bytes), self._cur.offset)
        return True

    def _note(self, kind: Change, path: Path, previous: Path | None, when: str) -> None:
        """Log and count a rotation or truncation of ``path``."""
        extra = {"file": str(path), "kind": kind, "byte": self._cur.offset, "when": when}
        if previous is not None:
            log.warning(
                "file rotated or truncated: reading the rest of the previous file first",
                extra={**extra, "previous": str(previous)},
            )
        elif when == "while following":
            log.warning("file rotated or truncated: reading the new file", extra=extra)
        else:
            log.warning(
                "file rotated or truncated while driftd was stopped, and no file beside it holds "
                "the rest of the previous one: lines written to it after the byte read, if any, "
                "were not read; reading the new file",
                extra=extra,
            )
        if self.on_change is not None:
            self.on_change(kind)

    def _close_file(self) -> None:
        if self._f is not None:
            self._f.reader.fh.close()
            self._f.raw.close()
            self._f = None

    # -- reading -------------------------------------------------------------------------
    def poll(self, timeout_s: float, max_records: int) -> list[RawChunk]:
        """Up to ``max_records`` lines of the current file, as one chunk."""
        while self._file_idx < len(self.paths):
            chunk = self._read(max_records)
            if chunk is not None:
                return [chunk]
            if self._switch:  # a new generation of the path: read it now
                continue
            if self._tailing():
                time.sleep(min(timeout_s, 0.05))
                return []
            self._close_file()
            self._file_idx += 1
        return []

    def _tailing(self) -> bool:
        return self.follow and self._file_idx == len(self.paths) - 1

    def _fill(self, f: _Open) -> bool:
        """Make complete lines available; False when none can be had now."""
        while True:
            # Back at a followed file's end: it may have been truncated and written past the
            # offset since, which only its first bytes tell; check before reading on.
            if f.at_end and not self._final and self._tailing() and self._watch(f):
                self._final = True
                f = self._f  # type: ignore[assignment]  # _watch may have opened a copy
            f.at_end = False
            if f.reader.fill():
                return True
            f.at_end = True
            if self._final:
                if f.reader.flush():  # the last line of a file that gets no more data
                    return True
                self._switch = True
                return False
            if not self._tailing():
                self._leave_unterminated(f)
            return False

    def _leave_unterminated(self, f: _Open) -> None:
        """At the end of a file read once: log a last line without its newline (unread)."""
        key, left = self._key(), Unterminated(str(f.path), self._cur.offset, f.reader.pending)
        if not left.size:
            self.unterminated.pop(key, None)
            return
        if self.unterminated.get(key) == left:
            return
        self.unterminated[key] = left
        n = left.size
        log.warning(
            "last line has no newline: left unread until its newline arrives",
            extra={"file": str(f.path), "byte": self._cur.offset, "bytes": n},
        )

    def _read(self, max_records: int) -> RawChunk | None:
        f = self._current()
        start = self._cur
        raws: list[bytes] = []
        positions: list[int] = []
        while len(raws) < max_records:
            if not f.reader.has_lines and not self._fill(f):
                break
            f = self._f  # type: ignore[assignment]  # the copy of a truncated file, maybe
            take, nbytes = f.reader.take(max_records - len(raws))
            cur = self._cur
            first = cur.line - cur.line_base + 1
            self._cur = replace(cur, byte=cur.byte + nbytes, line=cur.line + len(take))
            if b"" in take or b"\r" in take:  # blank lines (LF or CRLF) are not events
                keep = [k for k, raw in enumerate(take) if raw not in (b"", b"\r")]
                raws.extend(take[k] for k in keep)
                positions.extend(first + k for k in keep)
            else:
                raws.extend(take)
                positions.extend(range(first, first + len(take)))
        limit = self.max_event_bytes
        if raws and max(map(len, raws)) > limit:  # lines too long, even inside one block
            raws = [r if len(r) <= limit else r[: limit + 1] for r in raws]
        if (self._cur.byte, self._cur.line) == (start.byte, start.line):
            return None
        self._cur = ident.with_fingerprint(self._cur, f.raw.fileno())
        resume = ident.encode(self._key(), self._cur)
        return RawChunk(0, "mixed", str(f.path), raws, positions, resume)

    def commit(self, partition: int, offsets: Offsets) -> None:
        """Files have no broker to report to."""

    def lag(self) -> Lag:
        """Bytes left in the plain file being read; unknown (``None``) while no file is open
        (before the first read, after a replay's last) and for gzip, whose size is not the
        bytes it holds."""
        f, cur = self._f, self._cur  # read at scrape time, from another thread
        if self._file_idx >= len(self.paths) or f is None or not f.plain:
            return Lag()
        try:
            size = os.fstat(f.raw.fileno()).st_size
        except (OSError, ValueError):  # closed since: the next scrape tells
            return Lag()
        return Lag(remaining_bytes=max(size - cur.offset, 0))

    def close(self) -> None:
        """Close the open file."""
        self._close_file()
