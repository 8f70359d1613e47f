"""Reproducibility: seeding, deterministic mode, what a run records, and rerun-and-compare.

A run record (``run_record``) is a JSON-able dict holding everything a rerun needs (entry
point, task, params, seed, deterministic flag, device, dataset hash) plus what explains a
mismatch (code version, environment) and what is checked (artifact hash, metrics).
``reproduce`` reruns the trainer from a record alone and ``compare_runs`` says what differs.
Deterministic CPU runs are expected to match bit for bit with the same torch build and thread
count; CUDA runs in deterministic mode match on the same GPU model, driver and library versions.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from driftd.retrain.provenance import code_version, entry_point_dir, environment
from driftd.retrain.provenance import file_sha256 as file_sha256  # where callers knew it
from driftd.retrain.snapshot import MANIFEST
from driftd.retrain.trainer import ReportFn, TrainRequest, TrainResult, load_entry_point

CUBLAS_WORKSPACE = ":4096:8"
# Metrics that measure speed, not the model: never compared.
VOLATILE_METRICS = ("rows_per_s", "train_seconds", "wall_seconds")
# Environment fields whose change can explain a different artifact.
ENV_FIELDS = ("python", "torch", "numpy", "cuda", "cudnn", "gpus", "torch_threads", "machine")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG, torch's CPU RNG and every CUDA device."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # also for third-party code
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@contextlib.contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """Within the block, force deterministic kernels (errors for ops without one); restore after.

    Caveat: cuBLAS reads ``CUBLAS_WORKSPACE_CONFIG`` when it creates its handle, i.e. on the
    process's first cuBLAS call. Set it in the environment before CUDA is first used (a worker
    process started with it) for the setting made here to take effect on GPU.
    """
    if not enabled:
        yield
        return
    cudnn = torch.backends.cudnn
    prev = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        cudnn.deterministic,
        cudnn.benchmark,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    if prev[4] not in (":4096:8", ":16:8"):
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
    torch.use_deterministic_algorithms(True, warn_only=False)
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
        cudnn.deterministic, cudnn.benchmark = prev[2], prev[3]
        if prev[4] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = prev[4]


def run_record(
    entry_point: str, request: TrainRequest, result: TrainResult, *, code_dir: Path | None = None
) -> dict[str, Any]:
    """Everything ``reproduce`` needs and ``compare_runs`` checks, as a JSON-able dict."""
    return {
        "entry_point": entry_point,
        "task": request.task,
        "params": dict(request.params),
        "seed": request.seed,
        "deterministic": request.deterministic,
        "device": result.device,
        "dataset_sha256": request.snapshot_sha256,
        "code": code_version(code_dir or entry_point_dir(entry_point)),
        "environment": environment(),
        "artifact_sha256": result.artifact_sha256,
        "metrics": dict(result.metrics),
        "epochs_run": result.epochs_run,
    }


@dataclass(frozen=True)
class Difference:
    """One recorded-vs-rerun difference; ``kind`` groups them (dataset, code, params, ...)."""

    kind: str
    field: str
    recorded: Any
    now: Any
    message: str


@dataclass(frozen=True)
class ReproReport:
    """Whether a rerun reproduced the artifact and metrics, and every difference found."""

    artifact_match: bool
    metrics_match: bool
    differences: tuple[Difference, ...]

    @property
    def ok(self) -> bool:
        """The artifact hash and the metrics both match."""
        return self.artifact_match and self.metrics_match

    def kinds(self) -> set[str]:
        """The kinds of difference found, e.g. ``{"dataset", "artifact"}``."""
        return {d.kind for d in self.differences}

    def summary(self) -> str:
        """One line per difference after a verdict line."""
        head = "reproduced" if self.ok else "NOT reproduced"
        return "\n".join([head, *(d.message for d in self.differences)])


def _short(h: Any) -> str:
    return f"{str(h)[:8]}…" if h else str(h)


def _params_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    parts = [
        f"{k} {old[k]!r} -> {new[k]!r}" for k in sorted(old.keys() & new.keys()) if old[k] != new[k]
    ]
    parts += [f"added {k}={new[k]!r}" for k in sorted(new.keys() - old.keys())]
    return parts + [f"removed {k}" for k in sorted(old.keys() - new.keys())]


def _metric_diffs(old: Mapping[str, float], new: Mapping[str, float], tol: float) -> list[str]:
    out = []
    for k in sorted(old.keys() | new.keys()):
        if k.startswith(VOLATILE_METRICS):
            continue
        a, b = old.get(k), new.get(k)
        if a is None or b is None:
            out.append(f"{k} {'missing now' if b is None else 'not recorded'}")
        elif not (a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol):
            out.append(f"{k} {a!r} -> {b!r}")
    return out


def _code_diffs(ca: Mapping[str, Any], cb: Mapping[str, Any]) -> list[Difference]:
    """The commit, then the dirty flag or (same flag) the uncommitted diff."""
    out = []
    if ca.get("commit") != cb.get("commit"):
        out.append(
            Difference(
                "code",
                "commit",
                ca.get("commit"),
                cb.get("commit"),
                f"code version changed: commit recorded {_short(ca.get('commit'))}, "
                f"now {_short(cb.get('commit'))}",
            )
        )
    if ca.get("dirty") != cb.get("dirty"):
        out.append(
            Difference(
                "code",
                "dirty",
                ca.get("dirty"),
                cb.get("dirty"),
                f"code version changed: uncommitted changes recorded {ca.get('dirty')}, "
                f"now {cb.get('dirty')}",
            )
        )
    elif ca.get("diff_sha256") != cb.get("diff_sha256"):
        out.append(
            Difference(
                "code",
                "diff_sha256",
                ca.get("diff_sha256"),
                cb.get("diff_sha256"),
                f"code version changed: uncommitted diff recorded "
                f"{_short(ca.get('diff_sha256'))}, now {_short(cb.get('diff_sha256'))}",
            )
        )
    return out


def _input_diffs(recorded: Mapping[str, Any], rerun: Mapping[str, Any]) -> list[Difference]:
    """Entry point, task, seed, deterministic flag and device; then the params."""
    out = []
    for key in ("entry_point", "task", "seed", "deterministic", "device"):
        a, b = recorded.get(key), rerun.get(key)
        if a != b:
            kind = "environment" if key == "device" else key
            out.append(Difference(kind, key, a, b, f"{key} changed: recorded {a!r}, now {b!r}"))
    pa, pb = recorded.get("params") or {}, rerun.get("params") or {}
    if changed := _params_diff(pa, pb):
        out.append(Difference("params", "params", pa, pb, "params changed: " + "; ".join(changed)))
    return out


def _environment_diffs(ea: Mapping[str, Any], eb: Mapping[str, Any]) -> list[Difference]:
    """The environment fields that can explain a mismatch, then the installed packages."""
    out = [
        Difference(
            "environment",
            key,
            ea.get(key),
            eb.get(key),
            f"environment: {key} recorded {ea.get(key)!r}, now {eb.get(key)!r}",
        )
        for key in ENV_FIELDS
        if ea.get(key) != eb.get(key)
    ]
    if ea.get("packages_sha256") != eb.get("packages_sha256"):
        old, new = set(ea.get("packages") or ()), set(eb.get("packages") or ())
        detail = sorted(new - old)[:5] + [f"-{p}" for p in sorted(old - new)[:5]]
        out.append(
            Difference(
                "environment",
                "packages",
                ea.get("packages_sha256"),
                eb.get("packages_sha256"),
                f"environment: installed packages differ {detail}",
            )
        )
    return out


def _hash_diff(kind: str, key: str, what: str, a: Any, b: Any) -> list[Difference]:
    """A recorded-vs-now hash that differs, shortened in the message."""
    if a == b:
        return []
    return [Difference(kind, key, a, b, f"{what}: recorded {_short(a)}, now {_short(b)}")]


def compare_runs(
    recorded: Mapping[str, Any], rerun: Mapping[str, Any], *, tolerance: float = 0.0
) -> ReproReport:
    """Compare two run records; metrics match within ``tolerance`` (absolute; 0 = exact)."""
    diffs = _hash_diff(
        "dataset",
        "dataset_sha256",
        "dataset changed",
        recorded.get("dataset_sha256"),
        rerun.get("dataset_sha256"),
    )
    diffs += _code_diffs(recorded.get("code") or {}, rerun.get("code") or {})
    diffs += _input_diffs(recorded, rerun)
    diffs += _environment_diffs(recorded.get("environment") or {}, rerun.get("environment") or {})
    a, b = recorded.get("artifact_sha256"), rerun.get("artifact_sha256")
    diffs += _hash_diff("artifact", "artifact_sha256", "artifact hash differs", a, b)
    ma, mb = recorded.get("metrics") or {}, rerun.get("metrics") or {}
    if metric_diffs := _metric_diffs(ma, mb, tolerance):
        message = "metrics differ: " + "; ".join(metric_diffs)
        diffs.append(
            Difference("metrics", "metrics", recorded.get("metrics"), rerun.get("metrics"), message)
        )
    return ReproReport(a == b, not metric_diffs, tuple(diffs))


def _manifest_sha256(snapshot_dir: Path | str) -> str:
    """The dataset hash a snapshot's manifest states (the trainer verifies the content)."""
    return str(json.loads((Path(snapshot_dir) / MANIFEST).read_text())["sha256"])


def rerun(
    recorded_run: Mapping[str, Any],
    snapshot_dir: Path | str,
    *,
    out_dir: Path | None = None,
    device: str | None = None,
    report: ReportFn | None = None,
) -> TrainResult:
    """Re-execute the recorded entry point with the recorded inputs on ``snapshot_dir``.

    The request carries the snapshot's *current* dataset hash, so a changed dataset trains (and
    ``compare_runs`` names it) instead of failing; a recorded CUDA device falls back to CPU.
    """
    trainer = load_entry_point(str(recorded_run["entry_point"]))
    current = _manifest_sha256(snapshot_dir)
    dev = device or str(recorded_run.get("device") or "cpu")
    if dev.startswith("cuda") and not torch.cuda.is_available():
        dev = "cpu"
    request = TrainRequest(
        snapshot_dir=Path(snapshot_dir),
        snapshot_sha256=current,
        task=recorded_run["task"],
        params=dict(recorded_run.get("params") or {}),
        seed=int(recorded_run["seed"]),
        device=dev,
        deterministic=bool(recorded_run.get("deterministic", False)),
        out_dir=Path(out_dir or tempfile.mkdtemp(prefix="driftd-rerun-")),
        **({"report": report} if report else {}),
    )
    return trainer(request)


def reproduce(
    recorded_run: Mapping[str, Any],
    snapshot_dir: Path | str,
    *,
    out_dir: Path | None = None,
    device: str | None = None,
    code_dir: Path | None = None,
    tolerance: float = 0.0,
) -> tuple[TrainResult, ReproReport]:
    """``rerun`` then ``compare_runs`` against a record of the rerun made here and now."""
    result = rerun(recorded_run, snapshot_dir, out_dir=out_dir, device=device)
    entry_point = str(recorded_run["entry_point"])
    now = {
        **dict(recorded_run),
        "device": result.device,
        "dataset_sha256": _manifest_sha256(snapshot_dir),
        "code": code_version(code_dir or entry_point_dir(entry_point)),
        "environment": environment(),
        "artifact_sha256": result.artifact_sha256,
        "metrics": dict(result.metrics),
        "epochs_run": result.epochs_run,
    }
    return result, compare_runs(recorded_run, now, tolerance=tolerance)
