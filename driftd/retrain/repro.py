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
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import random
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

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


def file_sha256(path: Path | str) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _packages() -> list[str]:
    """Installed distributions as sorted ``name==version`` (a pip freeze without a subprocess)."""
    found = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.add(f"{name.lower().replace('_', '-')}=={dist.version}")
    return sorted(found)


def _driver_version() -> str | None:
    """The NVIDIA driver version from nvidia-smi, when it exists and answers within 5 s."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(  # noqa: S603 (fixed arguments, no shell)
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def environment() -> dict[str, Any]:
    """Software and hardware that can change a run's numbers."""
    packages = _packages()
    cuda = torch.cuda.is_available()
    cudnn = torch.backends.cudnn.version() if cuda else None  # type: ignore[no-untyped-call]
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "torch": str(torch.__version__),
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "cuda_available": cuda,
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "gpus": [
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count() if cuda else 0)
        ],
        "driver": _driver_version(),
        "packages": packages,
        "packages_sha256": hashlib.sha256("\n".join(packages).encode()).hexdigest(),
    }


def _git(repo: Path, *args: str) -> bytes | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        return subprocess.run(  # noqa: S603 (fixed arguments, no shell)
            [git, "-C", str(repo), *args], capture_output=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def code_version(repo_dir: Path | str) -> dict[str, Any]:
    """Git commit, branch, dirty flag and SHA-256 of ``git diff HEAD`` (tracked files only);
    all None outside a git work tree."""
    repo = Path(repo_dir)
    commit = _git(repo, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "branch": None, "dirty": None, "diff_sha256": None}
    branch = _git(repo, "rev-parse", "--abbrev-ref", "HEAD") or b""
    status = _git(repo, "status", "--porcelain", "--untracked-files=no") or b""
    diff = _git(repo, "diff", "HEAD", "--binary") or b""
    return {
        "commit": commit.decode().strip(),
        "branch": branch.decode().strip() or None,
        "dirty": bool(status.strip()),
        "diff_sha256": hashlib.sha256(diff).hexdigest() if status.strip() else None,
    }


def entry_point_dir(entry_point: str) -> Path:
    """The directory of the entry point's module (where its code version is read)."""
    spec = importlib.util.find_spec(entry_point.partition(":")[0])
    if spec is None or spec.origin is None:
        return Path.cwd()
    return Path(spec.origin).resolve().parent


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


def compare_runs(
    recorded: Mapping[str, Any], rerun: Mapping[str, Any], *, tolerance: float = 0.0
) -> ReproReport:
    """Compare two run records; metrics match within ``tolerance`` (absolute; 0 = exact)."""
    diffs: list[Difference] = []

    def add(kind: str, field: str, a: Any, b: Any, message: str) -> None:
        diffs.append(Difference(kind, field, a, b, message))

    a, b = recorded.get("dataset_sha256"), rerun.get("dataset_sha256")
    if a != b:
        add(
            "dataset",
            "dataset_sha256",
            a,
            b,
            f"dataset changed: recorded {_short(a)}, now {_short(b)}",
        )
    ca, cb = recorded.get("code") or {}, rerun.get("code") or {}
    if ca.get("commit") != cb.get("commit"):
        add(
            "code",
            "commit",
            ca.get("commit"),
            cb.get("commit"),
            f"code version changed: commit recorded {_short(ca.get('commit'))}, "
            f"now {_short(cb.get('commit'))}",
        )
    if ca.get("dirty") != cb.get("dirty"):
        add(
            "code",
            "dirty",
            ca.get("dirty"),
            cb.get("dirty"),
            f"code version changed: uncommitted changes recorded {ca.get('dirty')}, "
            f"now {cb.get('dirty')}",
        )
    elif ca.get("diff_sha256") != cb.get("diff_sha256"):
        add(
            "code",
            "diff_sha256",
            ca.get("diff_sha256"),
            cb.get("diff_sha256"),
            f"code version changed: uncommitted diff recorded {_short(ca.get('diff_sha256'))}, "
            f"now {_short(cb.get('diff_sha256'))}",
        )
    for key in ("entry_point", "task", "seed", "deterministic", "device"):
        if recorded.get(key) != rerun.get(key):
            kind = "environment" if key == "device" else key
            add(
                kind,
                key,
                recorded.get(key),
                rerun.get(key),
                f"{key} changed: recorded {recorded.get(key)!r}, now {rerun.get(key)!r}",
            )
    pa, pb = recorded.get("params") or {}, rerun.get("params") or {}
    if changed := _params_diff(pa, pb):
        add("params", "params", pa, pb, "params changed: " + "; ".join(changed))
    ea, eb = recorded.get("environment") or {}, rerun.get("environment") or {}
    for key in ENV_FIELDS:
        if ea.get(key) != eb.get(key):
            add(
                "environment",
                key,
                ea.get(key),
                eb.get(key),
                f"environment: {key} recorded {ea.get(key)!r}, now {eb.get(key)!r}",
            )
    if ea.get("packages_sha256") != eb.get("packages_sha256"):
        old, new = set(ea.get("packages") or ()), set(eb.get("packages") or ())
        detail = sorted(new - old)[:5] + [f"-{p}" for p in sorted(old - new)[:5]]
        add(
            "environment",
            "packages",
            ea.get("packages_sha256"),
            eb.get("packages_sha256"),
            f"environment: installed packages differ {detail}",
        )
    a, b = recorded.get("artifact_sha256"), rerun.get("artifact_sha256")
    if a != b:
        add(
            "artifact",
            "artifact_sha256",
            a,
            b,
            f"artifact hash differs: recorded {_short(a)}, now {_short(b)}",
        )
    metric_diffs = _metric_diffs(
        recorded.get("metrics") or {}, rerun.get("metrics") or {}, tolerance
    )
    if metric_diffs:
        add(
            "metrics",
            "metrics",
            recorded.get("metrics"),
            rerun.get("metrics"),
            "metrics differ: " + "; ".join(metric_diffs),
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
