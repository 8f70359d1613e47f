"""Which file a file source was reading, and whether its path still names that file.

The rules of log shippers (fluent-bit, filebeat): the path names another file when its inode
changed (rename rotation); the same file was truncated (copytruncate) when it is shorter than
the offset already read, or when its first bytes changed (it was truncated and written past
that offset again, or its inode was reused). The device number is not compared: it can change
across reboots and container restarts while the file does not.

Checkpoint stores refuse offsets that decrease, so a path's position is kept as counts that only
grow: bytes and lines read over every *generation* (each file the path has named), the counts at
which the current generation began, and identity keys whose high bits hold the generation number.
A checkpoint written before these keys existed is generation 0 of a file of unknown identity.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from driftd.daemon.abc import Offsets

LINE_SUFFIX = "#line"
BASE_SUFFIX = "#base"
LINE_BASE_SUFFIX = "#line_base"
FILE_SUFFIX = "#file"  # generation << 40 | the low 40 bits of the inode
HEAD_SUFFIX = "#head"  # generation << 40 | fingerprint length << 32 | CRC-32 of the first bytes
FP_MAX = 255  # bytes of the fingerprint: enough to hold a whole first event of a log line
_GEN_SHIFT = 40
_LOW40 = (1 << 40) - 1
Change = Literal["rotated", "truncated"]
CHANGES: tuple[Change, ...] = ("rotated", "truncated")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where reading a path stands: what its checkpoint keys hold."""

    byte: int = 0  # bytes read from the path, over every generation
    line: int = 0  # lines read, over every generation
    base: int = 0  # ``byte`` when the current generation began
    line_base: int = 0
    gen: int = 0
    ino: int | None = None  # the low 40 bits of the generation's inode; None: not known
    fp_len: int = 0  # how many first bytes of the file ``fp_crc`` covers
    fp_crc: int = 0

    @property
    def offset(self) -> int:
        """Byte offset in the current generation's file."""
        return self.byte - self.base

    def next_generation(self, ino: int) -> Cursor:
        """The cursor at the start of the next file the path names."""
        return Cursor(self.byte, self.line, self.byte, self.line, self.gen + 1, ino & _LOW40)


def adopt(c: Cursor, ino: int) -> Cursor:
    """The cursor of a file met for the first time (or known by offsets only): its inode."""
    return c if c.ino is not None else replace(c, ino=ino & _LOW40)


def decode(key: str, offsets: Offsets) -> Cursor:
    """The cursor of path ``key`` in checkpointed offsets (an empty one when absent)."""
    file_v, head_v = offsets.get(key + FILE_SUFFIX), offsets.get(key + HEAD_SUFFIX, 0)
    return Cursor(
        byte=offsets.get(key, 0),
        line=offsets.get(key + LINE_SUFFIX, 0),
        base=offsets.get(key + BASE_SUFFIX, 0),
        line_base=offsets.get(key + LINE_BASE_SUFFIX, 0),
        gen=0 if file_v is None else file_v >> _GEN_SHIFT,
        ino=None if file_v is None else file_v & _LOW40,
        fp_len=(head_v >> 32) & 0xFF,
        fp_crc=head_v & 0xFFFFFFFF,
    )


def encode(key: str, c: Cursor) -> Offsets:
    """The checkpoint keys of path ``key``; each one only grows as reading goes on."""
    out = {
        key: c.byte,
        key + LINE_SUFFIX: c.line,
        key + BASE_SUFFIX: c.base,
        key + LINE_BASE_SUFFIX: c.line_base,
        key + HEAD_SUFFIX: c.gen << _GEN_SHIFT | c.fp_len << 32 | c.fp_crc,
    }
    if c.ino is not None:
        out[key + FILE_SUFFIX] = c.gen << _GEN_SHIFT | c.ino
    return out


def fingerprint(fd: int, n: int = FP_MAX) -> tuple[int, int]:
    """Length and CRC-32 of the first ``n`` bytes of an open file (fewer if it is shorter)."""
    head = os.pread(fd, n, 0)
    return len(head), zlib.crc32(head)


def with_fingerprint(c: Cursor, fd: int) -> Cursor:
    """The cursor with a longer fingerprint, while it covers fewer than FP_MAX bytes."""
    if c.fp_len >= FP_MAX:
        return c
    n, crc = fingerprint(fd)
    return replace(c, fp_len=n, fp_crc=crc) if n > c.fp_len else c


def change(c: Cursor, st: os.stat_result, fd: int, plain: bool) -> Change | None:
    """How the open file ``fd`` (stat ``st``) differs from the one the cursor was reading.

    None when it is the same file (or the cursor knows no identity and nothing was read).
    Sizes are compared for plain files only: a gzip file's offset counts uncompressed bytes.
    """
    if c.ino is not None and c.ino != st.st_ino & _LOW40:
        return "rotated"
    if plain and st.st_size < c.offset:
        return "truncated"
    if c.fp_len and fingerprint(fd, c.fp_len) != (c.fp_len, c.fp_crc):
        return "truncated"
    return None


def find_previous(path: Path, c: Cursor, current: os.stat_result) -> Path | None:
    """A file beside ``path`` holding the rest of the generation the cursor was reading.

    The renamed file (same inode and first bytes) comes first, else a copy that copytruncate
    left (same first bytes, at least as long as what was read); logrotate names both
    ``<name>.<suffix>``. A compressed copy is not recognised.
    """
    if c.ino is None and not c.fp_len:
        return None
    found: list[tuple[bool, str, Path]] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return None
    for e in entries:
        if not e.name.startswith(path.name) or e.name == path.name:
            continue
        try:
            if not e.is_file():
                continue
            st = e.stat()
            if os.path.samestat(st, current) or st.st_size < c.offset:
                continue
            same_ino = c.ino is not None and st.st_ino & _LOW40 == c.ino
            if c.fp_len:
                with open(e.path, "rb") as fh:
                    if fingerprint(fh.fileno(), c.fp_len) != (c.fp_len, c.fp_crc):
                        continue
            elif not same_ino:
                continue
        except OSError:
            continue
        found.append((not same_ino, e.name, Path(e.path)))
    return min(found)[2] if found else None


def renamed_to(folder: Path, st: os.stat_result) -> Path | None:
    """The name that the open file ``st`` now has in ``folder``, if it is still there."""
    try:
        for e in os.scandir(folder):
            if e.is_file() and e.inode() == st.st_ino and os.path.samestat(e.stat(), st):
                return Path(e.path)
    except OSError:
        pass
    return None
