"""`driftd run` on a file, stopped and run again while the file changes under it.

Each run goes through the daemon's own parts (build, checkpoint in SQLite, restore), and the
counts after the last run must equal the generator's truth for the whole stream: an unterminated
last line, a copytruncate or a rename rotation between two runs loses and double-counts nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from driftd.config import load_settings
from driftd.daemon import app as app_mod
from driftd.daemon.replay import checkpoint_status
from driftd.sim import synth

SPEC = synth.StreamSpec(events=400, seed=31, malformed_rate=0.01, duplicate_rate=0.02)


@pytest.fixture(scope="module")
def stream() -> synth.Stream:
    return synth.generate(SPEC)


def setup(tmp_path: Path) -> tuple[Path, Path]:
    """The config of a file source on ``events.jsonl`` (not written yet), and that path."""
    events = tmp_path / "events.jsonl"
    cfg = tmp_path / "driftd.toml"
    cfg.write_text(synth.config_toml(SPEC, events, tmp_path / "state"))
    return cfg, events


def run_once(cfg: Path) -> dict[str, Any]:
    """One `driftd run` (follow = false) to the end of the file; the checkpointed counts."""
    settings = load_settings(cfg, env={})
    application = app_mod.build(settings, serve_metrics=False)
    try:
        app_mod.run(application)
    finally:
        application.close()
    return checkpoint_status(settings)


def check_truth(status: dict[str, Any], stream: synth.Stream) -> None:
    assert status["consumed"] == len(stream.lines)
    assert status["dead_lettered"] == stream.truth["dead_lettered"]
    assert status["models"] == stream.truth["models"]


def lines(stream: synth.Stream, a: int, b: int | None = None) -> bytes:
    return b"".join(ln + b"\n" for ln in stream.lines[a:b])


def test_an_unterminated_last_line_is_read_once_when_its_newline_arrives(
    tmp_path: Path, stream: synth.Stream
) -> None:
    cfg, events = setup(tmp_path)
    k = len(stream.lines) // 2
    half = stream.lines[k][: len(stream.lines[k]) // 2]
    events.write_bytes(lines(stream, 0, k) + half)
    first = run_once(cfg)
    assert first["consumed"] == k  # the half line is left for later, not consumed
    assert first["dead_lettered"]["total"] == sum(
        1 for raw, _ in stream.bad if raw in stream.lines[:k]
    )
    with events.open("ab") as fh:
        fh.write(stream.lines[k][len(half) :] + b"\n" + lines(stream, k + 1))
    check_truth(run_once(cfg), stream)


def test_copytruncate_between_runs_reads_the_new_content(
    tmp_path: Path, stream: synth.Stream
) -> None:
    cfg, events = setup(tmp_path)
    k = 2 * len(stream.lines) // 3
    events.write_bytes(lines(stream, 0, k))
    run_once(cfg)
    # logrotate's copytruncate: copy, then truncate in place (same inode); the writer goes on.
    (tmp_path / "events.jsonl.1").write_bytes(events.read_bytes())
    with events.open("r+b") as fh:
        fh.truncate(0)
        fh.write(lines(stream, k))
    assert events.stat().st_size < len(lines(stream, 0, k))
    check_truth(run_once(cfg), stream)


def test_copytruncate_after_unread_lines_reads_them_from_the_copy(
    tmp_path: Path, stream: synth.Stream
) -> None:
    cfg, events = setup(tmp_path)
    a, b = len(stream.lines) // 8, len(stream.lines) // 2
    events.write_bytes(lines(stream, 0, a))
    run_once(cfg)
    with events.open("ab") as fh:  # written while driftd is stopped, then rotated away
        fh.write(lines(stream, a, b))
    (tmp_path / "events.jsonl.1").write_bytes(events.read_bytes())
    with events.open("r+b") as fh:
        fh.truncate(0)
        fh.write(lines(stream, b))  # larger than what was read: only the first bytes tell
    assert events.stat().st_size > len(lines(stream, 0, a))
    check_truth(run_once(cfg), stream)


@pytest.mark.parametrize("old_file", ["kept", "deleted"])
def test_rename_rotation_between_runs(tmp_path: Path, stream: synth.Stream, old_file: str) -> None:
    cfg, events = setup(tmp_path)
    a, b = len(stream.lines) // 4, len(stream.lines) // 2
    events.write_bytes(lines(stream, 0, a))
    run_once(cfg)
    with events.open("ab") as fh:
        fh.write(lines(stream, a, b))
    os.rename(events, tmp_path / "events.jsonl.1")
    events.write_bytes(lines(stream, b))
    if old_file == "deleted":  # the unread lines a..b are gone: the rest is still counted
        (tmp_path / "events.jsonl.1").unlink()
        status = run_once(cfg)
        assert status["consumed"] == len(stream.lines) - (b - a)
        return
    check_truth(run_once(cfg), stream)


def test_checkpoint_offsets_never_move_backwards_across_a_rotation(
    tmp_path: Path, stream: synth.Stream
) -> None:
    cfg, events = setup(tmp_path)
    k = len(stream.lines) // 2
    events.write_bytes(lines(stream, 0, k))
    before = run_once(cfg)["checkpoints"][0]["offsets"]
    with events.open("r+b") as fh:
        fh.truncate(0)
        fh.write(lines(stream, k))
    after = run_once(cfg)["checkpoints"][0]["offsets"]
    assert all(after[key] >= v for key, v in before.items()), json.dumps([before, after])
    assert after[str(events)] == len(lines(stream, 0))  # bytes read over both files


def test_rotations_are_counted_in_the_daemon_metrics(tmp_path: Path, stream: synth.Stream) -> None:
    cfg, events = setup(tmp_path)
    k = len(stream.lines) // 2
    events.write_bytes(lines(stream, 0, k))
    run_once(cfg)
    with events.open("r+b") as fh:
        fh.truncate(0)
        fh.write(lines(stream, k))
    application = app_mod.build(load_settings(cfg, env={}), serve_metrics=False)
    try:
        sample = application.registry.get_sample_value
        assert sample("driftd_source_rotations_total", {"kind": "truncated"}) == 0
        app_mod.run(application)
        assert sample("driftd_source_rotations_total", {"kind": "truncated"}) == 1
        assert sample("driftd_source_rotations_total", {"kind": "rotated"}) == 0
    finally:
        application.close()
