"""The lock files: exact, hashed, CPU torch, and consistent with pyproject's ranges."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
ENTRY = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+) \\$")


def pins(name: str) -> dict[str, tuple[Version, int]]:
    """Package -> (version, number of hashes) of a pip-compile lock file."""
    out: dict[str, tuple[Version, int]] = {}
    current: str | None = None
    for line in (ROOT / name).read_text().splitlines():
        if m := ENTRY.match(line):
            current = canonicalize_name(m.group(1))
            out[current] = (Version(m.group(2)), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, n = out[current]
            out[current] = (version, n + 1)
        elif not line.startswith("    "):
            current = None
    return out


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-runtime.lock"])
def test_every_pin_is_exact_and_hashed_and_torch_is_the_cpu_build(lock: str) -> None:
    locked = pins(lock)
    assert len(locked) > 40
    assert all(n >= 1 for _, n in locked.values()), [k for k, (_, n) in locked.items() if not n]
    assert locked["torch"][0] == Version("2.13.0+cpu")
    assert not [k for k in locked if k.startswith(("nvidia-", "triton"))]  # no CUDA build


def test_the_locks_admit_what_pyproject_asks_for() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev, runtime = pins("requirements.lock"), pins("requirements-runtime.lock")
    for lock, reqs in (
        (runtime, project["dependencies"]),
        (dev, project["dependencies"] + project["optional-dependencies"]["dev"]),
    ):
        for text in reqs:
            req = Requirement(text)
            version, _ = lock[canonicalize_name(req.name)]
            assert req.specifier.contains(version, prereleases=True), (text, version)
    assert {k: v for k, (v, _) in runtime.items()} == {k: dev[k][0] for k in runtime}


def test_the_compat_lock_pins_the_oldest_msgspec_pyproject_admits() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (spec,) = [Requirement(r) for r in project["dependencies"] if r.startswith("msgspec")]
    oldest = pins("requirements-compat.lock")["msgspec"][0]
    assert str(spec.specifier) == f">={oldest}"
    assert str(oldest) in (ROOT / "Makefile").read_text().split("msgspec.__version__ == '")[1][:10]
