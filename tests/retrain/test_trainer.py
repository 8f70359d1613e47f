"""The trainer interface: entry-point loading, requests, device resolution, tensors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from driftd.retrain import repro, tabular
from driftd.retrain.trainer import (
    BUILTIN,
    EntryPointError,
    TrainRequest,
    TrainResult,
    embedding_indices,
    load_entry_point,
    resolve_device,
    to_tensors,
)
from tests.retrain.test_tabular import make_snap, request


@pytest.fixture
def user_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path holding a few user trainer modules."""
    root = tmp_path / "mods"
    root.mkdir()
    (root / "usertrainer.py").write_text(
        "from driftd.retrain.trainer import TrainResult\n"
        "NOT_CALLABLE = 3\n"
        "class Box:\n"
        "    @staticmethod\n"
        "    def fit(request):\n"
        "        p = request.out_dir / 'a.bin'\n"
        "        p.parent.mkdir(parents=True, exist_ok=True)\n"
        "        p.write_bytes(repr(sorted(request.params.items())).encode())\n"
        "        m = {'seed': float(request.seed)}\n"
        "        return TrainResult(p, 'x', m, 1, request.device, 0.0)\n"
    )
    (root / "brokentrainer.py").write_text("import no_such_dependency_xyz\n")
    (root / "raisingtrainer.py").write_text("raise RuntimeError('bad config')\n")
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in ("usertrainer", "brokentrainer", "raisingtrainer"):
        sys.modules.pop(name, None)


def test_builtin_entry_point_is_the_tabular_trainer() -> None:
    assert load_entry_point(BUILTIN) is tabular.train


def test_entry_point_errors_name_the_entry_point_and_the_expectation(user_modules: Path) -> None:
    cases = {
        "no_colon_here": "is malformed; expected 'package.module:function'",
        "a:b:c": "is malformed",
        ":train": "is malformed",
        "no_such_pkg_xyz.mod:train": "module 'no_such_pkg_xyz.mod' not found; expected",
        "brokentrainer:train": "imports the missing module 'no_such_dependency_xyz'",
        "raisingtrainer:train": "raised RuntimeError: bad config",
        "usertrainer:nope": "'usertrainer' has no attribute 'nope'; expected",
        "usertrainer:Box.nope": "'usertrainer.Box' has no attribute 'nope'",
        "usertrainer:NOT_CALLABLE": "names a int, not a callable; expected",
    }
    for spec, message in cases.items():
        with pytest.raises(EntryPointError, match=message) as info:
            load_entry_point(spec)
        assert repr(spec) in str(info.value)


def test_a_user_entry_point_is_called_through_rerun(user_modules: Path, tmp_path: Path) -> None:
    trainer = load_entry_point("usertrainer:Box.fit")
    snap = make_snap(tmp_path, n=300)
    record = {
        "entry_point": "usertrainer:Box.fit",
        "task": "regression",
        "params": {"k": 1},
        "seed": 9,
    }
    result = repro.rerun(record, snap.path, out_dir=tmp_path / "o", device="cpu")
    assert isinstance(result, TrainResult) and result.metrics == {"seed": 9.0}
    assert result.artifact.read_bytes() == b"[('k', 1)]"
    assert callable(trainer)


def test_request_checks_task_and_dataset_hash(tmp_path: Path) -> None:
    snap = make_snap(tmp_path, n=300)
    with pytest.raises(ValueError, match="task='ranking' is invalid"):
        request(snap, tmp_path, task="ranking")  # type: ignore[arg-type]
    wrong = request(snap, tmp_path, snapshot_sha256="00" * 32)
    with pytest.raises(
        ValueError, match=f"has dataset sha256 {snap.sha256}, the request expects 0000"
    ):
        wrong.load()
    with pytest.raises(ValueError, match="has dataset sha256"):
        tabular.train(wrong)
    ok = request(snap, tmp_path)
    assert ok.arrays("train").numeric.shape[1] == 5
    assert ok == TrainRequest(**{**ok.__dict__, "report": print})  # report is not compared


def test_device_resolution() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    else:  # tensors report their index: an index-less device would never compare equal
        assert resolve_device("cuda") == torch.zeros(1, device="cuda").device
        assert resolve_device("auto") == resolve_device("cuda")


def test_tensors_shift_codes_so_zero_is_missing(tmp_path: Path) -> None:
    arrays = make_snap(tmp_path, n=300).arrays("train")
    idx = embedding_indices(arrays)
    np.testing.assert_array_equal(idx, np.where(arrays.categorical >= 0, arrays.categorical + 1, 0))
    assert (idx[:, 0] == 0).any() and idx.dtype == np.int32
    t = to_tensors(arrays, torch.device("cpu"))
    assert len(t) == len(arrays.label) and t.numeric.dtype == torch.float32
    assert torch.equal(t.categorical, torch.from_numpy(idx))
    assert torch.isnan(t.numeric).any()  # missing values stay NaN for the model to handle
