"""Reproducibility: bit-identical deterministic CPU retrains, and reruns that say what changed."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from driftd.retrain import repro, tabular
from driftd.retrain.trainer import BUILTIN
from tests.retrain.test_tabular import FAST, make_snap, request

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def test_deterministic_cpu_retrain_is_bit_identical_and_seed_sensitive(tmp_path: Path) -> None:
    snap = make_snap(tmp_path)
    a = tabular.train(request(snap, tmp_path / "a"))
    b = tabular.train(request(snap, tmp_path / "b"))
    assert a.artifact_sha256 == b.artifact_sha256 == repro.file_sha256(b.artifact)
    assert a.artifact.read_bytes() == b.artifact.read_bytes()
    stable = {k: v for k, v in a.metrics.items() if not k.startswith(repro.VOLATILE_METRICS)}
    assert stable == {k: v for k, v in b.metrics.items() if k in stable}
    c = tabular.train(request(snap, tmp_path / "c", seed=8))
    assert c.artifact_sha256 != a.artifact_sha256


def test_reproduce_from_the_record_alone(tmp_path: Path) -> None:
    snap = make_snap(tmp_path)
    req = request(snap, tmp_path / "a")
    record = repro.run_record(BUILTIN, req, tabular.train(req))
    result, report = repro.reproduce(record, snap.path, out_dir=tmp_path / "re")
    assert report.ok, report.summary()
    assert report.differences == () and report.summary() == "reproduced"
    assert result.artifact_sha256 == record["artifact_sha256"]


def test_reproduce_on_a_changed_dataset_says_so(tmp_path: Path) -> None:
    snap = make_snap(tmp_path)
    req = request(snap, tmp_path / "a")
    record = repro.run_record(BUILTIN, req, tabular.train(req))
    other = make_snap(tmp_path, seed=1)
    _, report = repro.reproduce(record, other.path, out_dir=tmp_path / "re")
    assert not report.ok and {"dataset", "artifact", "metrics"} <= report.kinds()
    assert "code" not in report.kinds() and "params" not in report.kinds()
    msg = report.summary()
    assert f"dataset changed: recorded {snap.sha256[:8]}…, now {other.sha256[:8]}…" in msg
    assert msg.startswith("NOT reproduced")


def test_compare_runs_names_params_seed_environment_and_metric_changes() -> None:
    base = {
        "entry_point": BUILTIN,
        "task": "binary",
        "params": {"lr": 0.001, "epochs": 5},
        "seed": 1,
        "deterministic": True,
        "device": "cpu",
        "dataset_sha256": "ab" * 32,
        "code": {"commit": "c1" * 20, "branch": "main", "dirty": False, "diff_sha256": None},
        "environment": {"torch": "2.13.0", "packages": ["a==1"], "packages_sha256": "x"},
        "artifact_sha256": "ff" * 32,
        "metrics": {"roc_auc": 0.9, "rows_per_s": 1000.0},
    }
    assert repro.compare_runs(base, dict(base)).ok
    changed = {
        **base,
        "params": {"lr": 0.01, "dropout": 0.1},
        "seed": 2,
        "environment": {"torch": "2.14.0", "packages": ["a==2"], "packages_sha256": "y"},
        "metrics": {"roc_auc": 0.9 + 1e-9, "rows_per_s": 5.0},
    }
    report = repro.compare_runs(base, changed)
    assert report.artifact_match and not report.metrics_match and not report.ok
    msgs = {d.kind: d.message for d in report.differences}
    assert msgs["params"] == "params changed: lr 0.001 -> 0.01; added dropout=0.1; removed epochs"
    assert msgs["seed"] == "seed changed: recorded 1, now 2"
    assert "roc_auc 0.9 -> " in msgs["metrics"] and "rows_per_s" not in msgs["metrics"]
    env = [d for d in report.differences if d.kind == "environment"]
    assert {d.field for d in env} == {"torch", "packages"}
    assert repro.compare_runs(base, changed, tolerance=1e-6).metrics_match


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e", *args],
        check=True,
        capture_output=True,
    )


@needs_git
def test_code_version_and_compare_runs_say_which_code_change(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    assert repro.code_version(repo)["commit"] is None  # not a git work tree
    _git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("LR = 1\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "one")
    clean = repro.code_version(repo)
    assert len(clean["commit"]) == 40 and clean["branch"] == "main"
    assert clean["dirty"] is False and clean["diff_sha256"] is None
    (repo / "train.py").write_text("LR = 2\n")
    dirty = repro.code_version(repo)
    assert dirty["commit"] == clean["commit"] and dirty["dirty"] is True
    (repo / "train.py").write_text("LR = 3\n")
    dirty2 = repro.code_version(repo)
    _git(repo, "commit", "-q", "-am", "two")
    moved = repro.code_version(repo)

    def msgs(a: dict[str, object], b: dict[str, object]) -> list[str]:
        report = repro.compare_runs({"code": a}, {"code": b})
        assert report.kinds() == {"code"}
        return [d.message for d in report.differences]

    assert msgs(clean, dirty) == [
        "code version changed: uncommitted changes recorded False, now True"
    ]
    assert msgs(dirty, dirty2) == [
        f"code version changed: uncommitted diff recorded {dirty['diff_sha256'][:8]}…, "
        f"now {dirty2['diff_sha256'][:8]}…"
    ]
    assert msgs(clean, moved) == [
        f"code version changed: commit recorded {clean['commit'][:8]}…, now {moved['commit'][:8]}…"
    ]


def test_seed_everything_seeds_every_rng() -> None:
    def draw() -> tuple[float, float, float]:
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    repro.seed_everything(3)
    first = draw()
    repro.seed_everything(3)
    assert draw() == first
    repro.seed_everything(4)
    assert draw() != first


def test_deterministic_mode_sets_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    with repro.deterministic_mode(True):
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    with pytest.raises(RuntimeError, match="boom"), repro.deterministic_mode(True):
        raise RuntimeError("boom")
    assert not torch.are_deterministic_algorithms_enabled()
    with repro.deterministic_mode(False):
        assert not torch.are_deterministic_algorithms_enabled()


def test_environment_and_file_hash(tmp_path: Path) -> None:
    env = repro.environment()
    assert env["torch"] == torch.__version__ and env["cpu_count"] == os.cpu_count()
    assert env["cuda_available"] == torch.cuda.is_available()
    assert any(p.startswith("numpy==") for p in env["packages"])
    assert env["packages"] == sorted(env["packages"]) and len(env["packages_sha256"]) == 64
    (tmp_path / "f").write_bytes(b"abc")
    assert repro.file_sha256(tmp_path / "f") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_rerun_uses_the_recorded_inputs(tmp_path: Path) -> None:
    snap = make_snap(tmp_path, n=800)
    record = {
        "entry_point": BUILTIN,
        "task": "binary",
        "params": {**FAST, "epochs": 2},
        "seed": 5,
        "deterministic": True,
        "device": "cuda" if not torch.cuda.is_available() else "cpu",  # falls back to CPU
    }
    epochs: list[int] = []
    result = repro.rerun(
        record, snap.path, out_dir=tmp_path / "o", report=lambda e, m: epochs.append(e)
    )
    assert result.device == "cpu" and epochs == [1, 2]
    direct = tabular.train(request(snap, tmp_path / "d", seed=5, params={**FAST, "epochs": 2}))
    assert direct.artifact_sha256 == result.artifact_sha256
