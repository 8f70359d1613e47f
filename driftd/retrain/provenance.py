"""Provenance of a run: the code version, the software and hardware environment, file hashes.

What a run records so that a mismatching rerun can be explained (``driftd.retrain.repro``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch


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
