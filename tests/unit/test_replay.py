"""replay_files: a generated file, replayed from nothing, gives the generator's truth."""

from __future__ import annotations

import base64
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest

from driftd.config import Settings, load_settings
from driftd.daemon.replay import replay_files
from driftd.sim import synth

SPEC = synth.StreamSpec(
    events=3000, seed=5, rate_per_s=5.0, malformed_rate=0.01, duplicate_rate=0.02
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return synth.write(SPEC, tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="module")
def settings(generated: dict[str, Path]) -> Settings:
    return load_settings(generated["config"], {})


@pytest.fixture(scope="module")
def truth(generated: dict[str, Path]) -> dict[str, Any]:
    return msgspec.json.decode(generated["truth"].read_bytes())


def dlq_records(path: Path) -> list[dict[str, Any]]:
    return [msgspec.json.decode(ln) for ln in path.read_bytes().splitlines()]


def test_replay_equals_the_generator_truth(
    generated: dict[str, Path], settings: Settings, truth: dict[str, Any], tmp_path: Path
) -> None:
    counts = truth["models"][SPEC.model]
    assert all(counts[k] for k in ("expired", "pending", "unmatched_labels", "duplicates"))
    summary = replay_files(settings, [generated["events"]], tmp_path / "x.dlq", progress=False)
    assert summary["models"] == truth["models"]
    assert summary["dead_lettered"] == truth["dead_lettered"]
    n_lines = generated["events"].read_bytes().count(b"\n")
    assert summary["consumed"] == n_lines
    assert summary["dead_letter_file"] == str(tmp_path / "x.dlq")


def test_dead_letter_file_has_one_line_per_dead_letter(
    generated: dict[str, Path], settings: Settings, truth: dict[str, Any], tmp_path: Path
) -> None:
    dlq = tmp_path / "out" / "events.dlq.jsonl"
    dlq.parent.mkdir()
    dlq.write_bytes(b'{"left over": "from an earlier run"}\n')
    replay_files(settings, [generated["events"]], dlq, progress=False)
    records = dlq_records(dlq)
    assert len(records) == truth["dead_lettered"]["total"]
    assert dict(Counter(r["reason"] for r in records)) == truth["dead_lettered"]["by_reason"]

    lines = generated["events"].read_bytes().split(b"\n")
    limit = settings.ingest.max_event_bytes
    for r in records:
        assert r["source"] == str(generated["events"])
        assert r["partition"] == 0
        raw = base64.b64decode(r["raw_base64"]) if "raw_base64" in r else r["raw"].encode()
        line = lines[r["offset"] - 1]  # offsets of a file are line numbers
        if r["reason"] == "oversized":
            assert len(raw) > limit
            assert line.startswith(raw)
        else:
            assert raw == line
    assert any("raw_base64" in r for r in records) == (
        "not_utf8" in truth["dead_lettered"]["by_reason"]
    )


def test_replay_twice_gives_the_same_summary_and_file(
    generated: dict[str, Path], settings: Settings, tmp_path: Path
) -> None:
    dlq = tmp_path / "x.dlq"
    first = replay_files(settings, [generated["events"]], dlq, progress=False)
    content = dlq.read_bytes()
    second = replay_files(settings, [generated["events"]], dlq, progress=False)
    drop = {"elapsed_s", "events_per_s"}
    assert {k: v for k, v in first.items() if k not in drop} == {
        k: v for k, v in second.items() if k not in drop
    }
    assert dlq.read_bytes() == content


def test_default_dead_letter_file_lives_in_the_data_dir(
    generated: dict[str, Path], settings: Settings
) -> None:
    summary = replay_files(settings, [generated["events"]], progress=False)
    expected = settings.pipeline.data_dir / "events.dlq.jsonl"
    assert summary["dead_letter_file"] == str(expected)
    assert len(dlq_records(expected)) == summary["dead_lettered"]["total"]


def test_an_unterminated_last_line_is_reported_not_consumed(
    generated: dict[str, Path], settings: Settings, truth: dict[str, Any], tmp_path: Path
) -> None:
    data = generated["events"].read_bytes()
    cut = tmp_path / "events.jsonl"
    cut.write_bytes(data[:-10])  # the last line lost its end (and its newline)
    summary = replay_files(settings, [cut], tmp_path / "x.dlq", progress=False)
    last = data[:-1].rfind(b"\n") + 1
    assert summary["consumed"] == data.count(b"\n") - 1
    assert summary["dead_lettered"]["total"] <= truth["dead_lettered"]["total"]
    assert summary["unterminated"] == [
        {"file": str(cut), "byte": last, "size": len(data) - 10 - last}
    ]
    whole = replay_files(settings, [generated["events"]], tmp_path / "y.dlq", progress=False)
    assert whole["unterminated"] == []
