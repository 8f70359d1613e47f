"""FileSource: JSON lines (plain or gzip) in chunks, with line positions and exact resume."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from driftd.daemon.abc import Lag, RawChunk
from driftd.daemon.sources import file as file_source
from driftd.daemon.sources.file import LINE_SUFFIX, FileSource, Unterminated
from driftd.errors import SourceError

LIMIT = 100


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def read_all(src: FileSource, max_records: int) -> list[RawChunk]:
    chunks: list[RawChunk] = []
    for _ in range(100_000):
        if src.exhausted:
            return chunks
        chunks += src.poll(0.0, max_records)
    raise AssertionError("the source never ran out")


def records(chunks: list[RawChunk]) -> list[tuple[int, bytes]]:
    return [(pos, raw) for c in chunks for pos, raw in zip(c.positions, c.raws, strict=True)]


def reference(data: bytes, limit: int) -> tuple[list[tuple[int, bytes]], int, int]:
    """Complete lines by number, blank ones dropped, long ones cut; the number of lines and
    the bytes they span (a last line without its newline is not read)."""
    lines = data.split(b"\n")
    lines.pop()  # empty, or a last line without its newline
    kept = [(i + 1, ln[: limit + 1]) for i, ln in enumerate(lines) if ln not in (b"", b"\r")]
    return kept, len(lines), data.rfind(b"\n") + 1


def at(resume: dict[str, int], path: Path) -> tuple[int, int]:
    """Bytes and lines read of ``path``, as a chunk's resume offsets say."""
    return resume[str(path)], resume[str(path) + LINE_SUFFIX]


MIXED = (
    b'{"a":1}\n'
    b"\n"
    b'{"b":2}\r\n'
    b"\r\n"
    b"   \n" + b"x" * 1000 + b"\n"  # white space is not blank: the pipeline dead-letters it
    b'{"c":3}\n'
    b'{"d":4}'  # no newline at the end
)


@pytest.mark.parametrize("max_records", [1, 3, 1000])
def test_gzip_and_plain_give_the_same_chunks(tmp_path: Path, max_records: int) -> None:
    plain = write(tmp_path / "a.jsonl", MIXED)
    packed = write(tmp_path / "b.jsonl.gz", MIXED, gz=True)
    a = read_all(FileSource([plain], LIMIT), max_records)
    b = read_all(FileSource([packed], LIMIT), max_records)
    assert [(c.raws, c.positions) for c in a] == [(c.raws, c.positions) for c in b]
    # Offsets count bytes of the uncompressed stream, so they match too.
    assert [at(c.resume, plain) for c in a] == [at(c.resume, packed) for c in b]
    assert {c.source for c in a} == {str(plain)}
    assert all(c.stream == "mixed" and c.partition == 0 for c in a)


def test_positions_are_line_numbers_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", b"A\n\nB\r\n\r\n  \nC\n")
    chunks = read_all(FileSource([path], LIMIT), 1000)
    assert records(chunks) == [(1, b"A"), (3, b"B\r"), (5, b"  "), (6, b"C")]
    assert at(chunks[-1].resume, path) == (path.stat().st_size, 6)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_last_line_without_newline_is_left_unread_and_reported(
    tmp_path: Path, gz: bool, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "a.jsonl", b"A\nBB", gz=gz)
    src = FileSource([path], LIMIT)
    chunks = read_all(src, 1000)
    assert records(chunks) == [(1, b"A")]
    assert at(chunks[-1].resume, path) == (2, 1)
    assert src.unterminated == {str(path): Unterminated(str(path), 2, 2)}
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "last line has no newline: left unread until its newline arrives"
    ]


@pytest.mark.parametrize("length", [3, LIMIT + 5, 3 * 16 + 1], ids=["short", "oversized", "blocks"])
def test_an_unterminated_line_is_read_once_when_its_newline_arrives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, length: int
) -> None:
    monkeypatch.setattr(file_source, "BLOCK", 16)
    path = write(tmp_path / "a.jsonl", b"A\n" + b"x" * length)
    first = read_all(FileSource([path], LIMIT), 1000)
    assert records(first) == [(1, b"A")]
    with path.open("ab") as fh:  # the writer finishes its line, and writes another
        fh.write(b"y\nC\n")
    src = FileSource([path], LIMIT)
    src.seek(0, first[-1].resume)
    rest = read_all(src, 1000)
    assert records(rest) == [(2, (b"x" * length + b"y")[: LIMIT + 1]), (3, b"C")]
    assert at(rest[-1].resume, path) == (path.stat().st_size, 3)
    assert src.unterminated == {}


@pytest.mark.parametrize(
    "length",
    [LIMIT + 1, 1000, 3 * file_source.BLOCK + 17],
    ids=["just-over", "inside-a-block", "across-blocks"],
)
@pytest.mark.parametrize("at_end", [False, True], ids=["middle", "last-line"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_oversized_line_is_cut_and_the_next_lines_are_intact(
    tmp_path: Path, length: int, at_end: bool, gz: bool
) -> None:
    long_line = bytes(i % 251 for i in range(length)).replace(b"\n", b"n")
    data = b'{"a":1}\n' + long_line + (b"\n" if at_end else b'\n{"b":2}\n{"c":3}\n')
    path = write(tmp_path / "a.jsonl", data, gz=gz)
    chunks = read_all(FileSource([path], LIMIT), 2)
    expected, n_lines, _ = reference(data, LIMIT)
    assert records(chunks) == expected
    assert len(records(chunks)[1][1]) == LIMIT + 1
    assert at(chunks[-1].resume, path) == (len(data), n_lines)


def _resume_everywhere(path: Path, limit: int, max_records: int, head_only: bool = False) -> None:
    """Resuming from each chunk's offsets yields exactly the chunks that followed it."""

    def seen(chunks: list[RawChunk]) -> list[tuple[int, bytes]]:
        return [(p, r[: limit + 1] if head_only else r) for p, r in records(chunks)]

    chunks = read_all(FileSource([path], limit), max_records)
    for k, chunk in enumerate(chunks):
        src = FileSource([path], limit)
        src.seek(0, chunk.resume)
        rest = read_all(src, max_records)
        assert seen(rest) == seen(chunks[k + 1 :])
        assert [c.resume for c in rest] == [c.resume for c in chunks[k + 1 :]]


@pytest.mark.parametrize("block", [3, 16, 1 << 20])
@pytest.mark.parametrize("max_records", [1, 2, 5])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_resume_from_a_checkpoint_yields_exactly_the_remaining_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int, max_records: int, gz: bool
) -> None:
    monkeypatch.setattr(file_source, "BLOCK", block)
    _resume_everywhere(write(tmp_path / "a.jsonl", MIXED, gz=gz), LIMIT, max_records)


def test_resume_of_an_untouched_file_starts_at_the_top(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", b"A\nB\n")
    src = FileSource([path], LIMIT)
    src.seek(0, {})
    assert records(read_all(src, 10)) == [(1, b"A"), (2, b"B")]


LINES = st.lists(
    st.one_of(
        st.binary(max_size=12),
        st.sampled_from([b"", b"\r", b" ", b"{}"]),
        st.integers(13, 60).map(lambda n: b"y" * n),
    ).map(lambda b: b.replace(b"\n", b"")),
    max_size=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=LINES,
    trailing_newline=st.booleans(),
    gz=st.booleans(),
    block=st.integers(1, 40),
    limit=st.integers(1, 20),
    max_records=st.integers(1, 6),
)
def test_any_file_reads_like_its_lines_and_resumes_exactly(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
    trailing_newline: bool,
    gz: bool,
    block: int,
    limit: int,
    max_records: int,
) -> None:
    data = b"\n".join(lines) + (b"\n" if trailing_newline and lines else b"")
    assume(not data.startswith(b"\x1f\x8b"))  # the gzip magic: not a plain file
    path = write(tmp_path_factory.mktemp("f") / "a.jsonl", data, gz=gz)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(file_source, "BLOCK", block)
        chunks = read_all(FileSource([path], limit), max_records)
        expected, n_lines, n_bytes = reference(data, limit)
        got = records(chunks)
        # Long lines are compared by their head; test_oversized_line_is_cut checks the cut.
        assert [(p, r[: limit + 1]) for p, r in got] == expected
        assert all(len(c.raws) <= max_records for c in chunks)
        assert not any(b"\n" in r for c in chunks for r in c.raws)
        if chunks:
            assert at(chunks[-1].resume, path) == (n_bytes, n_lines)
        _resume_everywhere(path, limit, max_records, head_only=True)


def test_files_are_read_in_order_each_with_its_own_offsets(tmp_path: Path) -> None:
    a = write(tmp_path / "a.jsonl", b"A1\nA2\n")
    b = write(tmp_path / "b.jsonl.gz", b"B1\nB2\nB3\n", gz=True)
    chunks = read_all(FileSource([a, b], LIMIT), 2)
    assert [(c.source, c.raws) for c in chunks] == [
        (str(a), [b"A1", b"A2"]),
        (str(b), [b"B1", b"B2"]),
        (str(b), [b"B3"]),
    ]
    # Resume with a finished and a half-read file: only the rest of the second one comes.
    offsets = chunks[0].resume | chunks[1].resume
    src = FileSource([a, b], LIMIT)
    src.seek(0, offsets)
    assert [(c.source, c.raws, c.positions) for c in read_all(src, 10)] == [(str(b), [b"B3"], [3])]


def test_follow_mode_sees_appended_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", b"A\nB\n")
    src = FileSource([path], LIMIT, follow=True)
    assert records(src.poll(0.0, 10)) == [(1, b"A"), (2, b"B")]
    assert src.poll(0.0, 10) == []
    assert not src.exhausted
    with path.open("ab") as fh:
        fh.write(b"C\nD")  # D is not complete until its newline arrives
    assert records(src.poll(0.0, 10)) == [(3, b"C")]
    assert src.poll(0.0, 10) == []
    with path.open("ab") as fh:
        fh.write(b"D\n")
    chunks = src.poll(0.0, 10)
    assert records(chunks) == [(4, b"DD")]
    assert chunks[0].resume[str(path)] == path.stat().st_size
    src.close()


def test_lag_is_the_bytes_left_in_a_plain_file(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", b"AAAA\nBBBB\n")
    src = FileSource([path], LIMIT)
    src.poll(0.0, 1)
    assert src.lag() == Lag(remaining_bytes=5)
    read_all(src, 10)
    assert src.lag() == Lag()


def test_a_missing_file_is_a_source_error(tmp_path: Path) -> None:
    src = FileSource([tmp_path / "nope.jsonl"], LIMIT)
    with pytest.raises(SourceError, match=r"nope\.jsonl"):
        src.poll(0.0, 10)


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_gzip_file_is_a_source_error(tmp_path: Path, damage: str) -> None:
    packed = gzip.compress(b'{"a":1}\n' * 1000)
    blob = packed[:-20] if damage == "truncated" else packed[:10] + b"garbage" * 10
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(blob)
    with pytest.raises(SourceError, match=r"a\.jsonl\.gz"):
        read_all(FileSource([path], LIMIT), 10_000)
