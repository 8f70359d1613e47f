"""FileSource across rotations: copytruncate and rename, while following and across a restart.

Every line written is read exactly once, in order, with its line number in the file that holds
it; the resume offsets never move backwards (the checkpoint stores refuse that); each rotation
is logged and counted.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftd.daemon.abc import Checkpoint, RawChunk
from driftd.daemon.checkpoint import MemoryCheckpointStore
from driftd.daemon.sources import file_identity as ident
from driftd.daemon.sources.file import LINE_SUFFIX, FileSource

LIMIT = 1000


class Reader:
    """A source with its checkpointed offsets, restartable, that records what it read."""

    def __init__(self, path: Path, follow: bool = True, **kw: object) -> None:
        self.path, self.follow, self.kw = path, follow, kw
        self.offsets: dict[str, int] = {}
        self.read: list[tuple[str, int, bytes]] = []  # (file, line number, raw)
        self.changes: list[str] = []
        self.store = MemoryCheckpointStore()
        self.seq = 0
        self.src = self._new()

    def _new(self) -> FileSource:
        src = FileSource(
            [self.path], LIMIT, follow=self.follow, on_change=self.changes.append, **self.kw
        )  # type: ignore[arg-type]
        src.seek(0, dict(self.offsets))
        return src

    def restart(self) -> None:
        self.src.close()
        self.src = self._new()

    def take(self, chunks: list[RawChunk]) -> None:
        for c in chunks:
            held = Path(c.source).read_bytes().split(b"\n")
            for p, r in zip(c.positions, c.raws, strict=True):
                assert held[p - 1][: LIMIT + 1] == r, (c.source, p)  # a line number in that file
                self.read.append((c.source, p, r))
            self.offsets.update(c.resume)
            self.seq += 1  # the store refuses offsets that move backwards
            self.store.save("t", [Checkpoint(0, self.seq, dict(self.offsets), b"", 0.0)])

    def drain(self) -> list[bytes]:
        """Poll until the source has nothing more now; the raws read."""
        n = len(self.read)
        for _ in range(10_000):
            chunks = self.src.poll(0.0, 3)
            if not chunks and (self.follow or self.src.exhausted):
                return [r for _, _, r in self.read[n:]]
            self.take(chunks)
        raise AssertionError("the source never caught up")


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)


def copytruncate(path: Path, copy: Path) -> None:
    shutil.copyfile(path, copy)
    with path.open("r+b") as fh:
        fh.truncate(0)


def rename_rotate(path: Path, old: Path) -> None:
    os.rename(path, old)
    path.touch()


def ev(i: int) -> bytes:
    return b'{"kind":"label","id":"e-%d","model":"m","ts":%d,"label":1}' % (i, 1000 + i)


def block(a: int, b: int) -> bytes:
    return b"".join(ev(i) + b"\n" for i in range(a, b))


@pytest.mark.parametrize("restart", [False, True], ids=["following", "restarted"])
def test_copytruncate_reads_the_new_content_from_its_start(tmp_path: Path, restart: bool) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(block(0, 5))
    r = Reader(path)
    assert r.drain() == [ev(i) for i in range(5)]
    copytruncate(path, tmp_path / "e.jsonl.1")
    append(path, block(5, 7))  # shorter than what was read
    if restart:
        r.restart()
    assert r.drain() == [ev(5), ev(6)]
    assert [(f, n) for f, n, _ in r.read[5:]] == [(str(path), 1), (str(path), 2)]
    assert r.changes == ["truncated"]
    assert r.offsets[str(path)] == len(block(0, 7))  # bytes read over both files
    assert r.offsets[str(path) + LINE_SUFFIX] == 7


@pytest.mark.parametrize("restart", [False, True], ids=["following", "restarted"])
def test_copytruncate_then_regrown_past_the_offset_is_told_by_the_first_bytes(
    tmp_path: Path, restart: bool
) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(block(0, 2))
    r = Reader(path)
    r.drain()
    copytruncate(path, tmp_path / "e.jsonl.1")
    append(path, block(2, 12))  # longer than what was read: the size alone cannot tell
    if restart:
        r.restart()
    assert r.drain() == [ev(i) for i in range(2, 12)]
    assert r.changes == ["truncated"]


@pytest.mark.parametrize("restart", [False, True], ids=["following", "restarted"])
def test_lines_written_before_a_copytruncate_are_read_from_the_copy(
    tmp_path: Path, restart: bool
) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(block(0, 3))
    r = Reader(path)
    r.drain()
    append(path, block(3, 6))  # not read yet when logrotate copies and truncates
    copytruncate(path, tmp_path / "e.jsonl.1")
    append(path, block(6, 8))
    if restart:
        r.restart()
    assert r.drain() == [ev(i) for i in range(3, 8)]
    copy = str(tmp_path / "e.jsonl.1")
    assert [(f, n) for f, n, _ in r.read[3:]] == [
        (copy, 4),
        (copy, 5),
        (copy, 6),
        (str(path), 1),
        (str(path), 2),
    ]


@pytest.mark.parametrize("restart", [False, True], ids=["following", "restarted"])
def test_rename_rotation_finishes_the_old_file_first(tmp_path: Path, restart: bool) -> None:
    path, old = tmp_path / "e.jsonl", tmp_path / "e.jsonl.1"
    path.write_bytes(block(0, 3))
    r = Reader(path, rotate_wait_s=0.0)
    r.drain()
    append(path, block(3, 5) + ev(5)[:10])  # the writer dies mid-line, then rotation
    rename_rotate(path, old)
    append(path, block(6, 8))
    if restart:
        r.restart()
    # The old file gets no more data: its unterminated last line goes to the pipeline as it is.
    assert r.drain() == [ev(3), ev(4), ev(5)[:10], ev(6), ev(7)]
    assert [f for f, _, _ in r.read[3:]] == [str(old)] * 3 + [str(path)] * 2
    assert [n for _, n, _ in r.read[3:]] == [4, 5, 6, 1, 2]
    assert r.changes == ["rotated"]


def test_a_renamed_file_is_read_a_while_after_the_rename(tmp_path: Path) -> None:
    path, old = tmp_path / "e.jsonl", tmp_path / "e.jsonl.1"
    path.write_bytes(block(0, 1))
    now = [0.0]
    r = Reader(path, rotate_wait_s=5.0, clock=lambda: now[0])
    r.drain()
    rename_rotate(path, old)
    append(path, block(3, 4))
    assert r.drain() == []  # the rename is seen; the writer may still append to the old file
    append(old, block(1, 3))
    now[0] = 4.9
    assert r.drain() == [ev(1), ev(2)]
    now[0] = 5.0
    assert r.drain() == [ev(3)]
    assert r.changes == ["rotated"]


def test_a_rotated_file_that_is_gone_loses_only_its_unread_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, old = tmp_path / "e.jsonl", tmp_path / "e.jsonl.1"
    path.write_bytes(block(0, 2))
    r = Reader(path)
    r.drain()
    append(path, block(2, 3))
    rename_rotate(path, old)
    old.unlink()
    append(path, block(3, 5))
    r.restart()
    assert r.drain() == [ev(3), ev(4)]
    assert r.changes == ["rotated"]
    assert any("no file beside it holds the rest" in m for m in caplog.messages)


def test_a_checkpoint_without_identity_keys_resumes_and_still_sees_a_truncation(
    tmp_path: Path,
) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(block(0, 4))
    old_style = {str(path): len(block(0, 2)), str(path) + LINE_SUFFIX: 2}  # before identities
    src = FileSource([path], LIMIT)
    src.seek(0, old_style)
    chunks = src.poll(0.0, 10)
    assert [c.raws for c in chunks] == [[ev(2), ev(3)]] and chunks[0].positions == [3, 4]
    path.write_bytes(block(4, 5))  # now shorter than the old checkpoint's offset
    changes: list[str] = []
    src = FileSource([path], LIMIT, on_change=changes.append)
    src.seek(0, old_style)
    assert [c.raws for c in src.poll(0.0, 10)] == [[ev(4)]]
    assert changes == ["truncated"]


def test_offsets_of_the_same_file_stay_the_same_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(block(0, 3))
    r = Reader(path, follow=False)
    r.drain()
    before = dict(r.offsets)
    append(path, block(3, 4))
    r.restart()
    assert r.drain() == [ev(3)]
    assert r.changes == []
    assert r.offsets[str(path) + ident.FILE_SUFFIX] == before[str(path) + ident.FILE_SUFFIX]


def play(tmp: Path, ops: list[str], rotate_wait: float) -> None:
    """Write, rotate, restart and catch up as ``ops`` say; then every line was read once.

    Rotations happen at line ends, at most one between two catch-ups (as logrotate does);
    and only once some of the file was read: before that, nothing of it is checkpointed.
    """
    path = tmp / "e.jsonl"
    path.touch()
    now = [0.0]
    r = Reader(path, rotate_wait_s=rotate_wait, clock=lambda: now[0])
    r.drain()  # driftd follows the file before lines arrive
    written = 0
    partial = b""  # the unterminated line the writer is in the middle of
    rotated_since_drain = False
    unread = read_some = False  # lines written since the last catch-up; some of this file read
    for k, op in enumerate(ops):
        if op in ("append", "partial"):
            nxt = ev(written + 1)[:7] if op == "partial" else b""
            append(path, ev(written)[len(partial) :] + b"\n" + nxt)
            written += 1
            partial = nxt
            unread = True
        elif op == "drain":
            r.drain()
            now[0] += rotate_wait
            r.drain()  # after the wait, the new file
            rotated_since_drain = False
            read_some = read_some or unread
            unread = False
        elif op == "restart":
            r.restart()
        elif not partial and not rotated_since_drain and read_some:
            target = tmp / f"e.jsonl.{k}"
            (copytruncate if op == "truncate" else rename_rotate)(path, target)
            rotated_since_drain = True
            read_some = unread = False
    if partial:
        append(path, ev(written)[len(partial) :] + b"\n")
        written += 1
    r.drain()
    now[0] += rotate_wait
    r.drain()
    assert [raw for _, _, raw in r.read] == [ev(i) for i in range(written)]


OPS = ["append", "partial", "drain", "restart", "truncate", "rename"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.sampled_from(OPS), max_size=30), wait=st.sampled_from([0.0, 1.0]))
def test_any_rotations_and_restarts_read_every_line_once(
    tmp_path_factory: pytest.TempPathFactory, ops: list[str], wait: float
) -> None:
    play(tmp_path_factory.mktemp("rot"), ops, wait)


def test_identity_keys_round_trip_and_fit_in_64_bits() -> None:
    c = ident.Cursor(
        10, 2, 4, 1, gen=(1 << 22) - 1, ino=(1 << 40) - 1, fp_len=255, fp_crc=2**32 - 1
    )
    keys = ident.encode("p", c)
    assert ident.decode("p", keys) == c
    assert all(0 <= v < 1 << 63 for v in keys.values())
    nxt = c.next_generation(ino=5)
    assert all(ident.encode("p", nxt)[k] >= v for k, v in keys.items())
