"""Executors: run one retrain job in a child process and say how it ended.

``SubprocessExecutor`` (the default) starts ``python -m driftd.retrain.jobrun`` in its own
process group with an address-space limit (``RLIMIT_AS``) and ``PR_SET_PDEATHSIG``, so that a
crash, an out-of-memory trainer or a hang becomes a failed ``Outcome`` with its reason and never
takes the daemon down; the child also dies if the daemon does. ``TorchrunExecutor`` runs the
same child under ``torchrun --standalone`` for several GPUs (or CPU processes) on one machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from driftd.retrain.abc import JOB_ATTEMPT_ENV, JOB_ID_ENV, Job, Outcome
from driftd.retrain.jobrun import EXIT_MEMORY, PR_SET_PDEATHSIG

MiB = 1 << 20
# Resolved before any fork: preexec_fn must not dlopen (another thread may hold the loader lock).
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _tail(path: Path, limit: int = 500) -> str:
    """The last non-empty line of a (possibly long) log file, shortened to ``limit``."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 65536))
            lines = [ln.strip() for ln in fh.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln]
    return lines[-1][-limit:] if lines else ""


class SubprocessExecutor:
    """A job in a fresh Python child with a wall-clock timeout and a memory limit.

    On timeout the child's process group gets SIGTERM, then SIGKILL after ``grace_s``; when
    ``stop`` is set (the worker lost its lease or the job was cancelled) it gets SIGKILL at
    once. Either way the group is swept with SIGKILL before the child is reaped, so no
    grandchild outlives the job.
    """

    def __init__(
        self,
        timeout_s: float,
        memory_limit_bytes: int | None = None,
        python: str = sys.executable,
        *,
        grace_s: float = 5.0,
        work_root: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        keep_workdir: bool = False,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, not {timeout_s}")
        self.timeout_s = timeout_s
        self.memory_limit_bytes = memory_limit_bytes
        self.python = python
        self.grace_s = grace_s
        self.work_root = work_root
        self.env = dict(env or {})
        self.cwd = cwd
        self.keep_workdir = keep_workdir

    def command(self, spec_path: Path) -> list[str]:
        """The child's argv."""
        return [self.python, "-m", "driftd.retrain.jobrun", str(spec_path)]

    def _preexec(self) -> None:
        # Runs in the child between fork and exec: only async-signal-safe-ish calls.
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if self.memory_limit_bytes is not None:
            limit = self.memory_limit_bytes
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def _child_env(self, job: Job, workdir: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                JOB_ID_ENV: job.id,
                "DRIFTD_JOB_MODEL": job.model,
                JOB_ATTEMPT_ENV: str(job.attempts),
                "DRIFTD_JOB_DIR": str(workdir),
            }
        )
        if self.memory_limit_bytes is not None:
            # BLAS thread pools reserve address space per thread; one thread keeps the limit
            # about the trainer's data rather than the machine's core count.
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env.setdefault(var, "1")
        env.update(self.env)
        return env

    def run(self, job: Job, stop: threading.Event | None = None) -> Outcome:
        """Run ``job`` in a child and wait for it, the timeout, or ``stop``."""
        root = str(self.work_root) if self.work_root is not None else None
        workdir = Path(tempfile.mkdtemp(prefix=f"driftd-job-{job.id[:12]}-", dir=root))
        try:
            spec_path = workdir / "spec.json"
            spec_path.write_text(json.dumps(job.spec))
            with (workdir / "stderr.log").open("wb") as log:
                proc = subprocess.Popen(  # noqa: S603 - argv built from our own interpreter
                    self.command(spec_path),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd=self.cwd,
                    env=self._child_env(job, workdir),
                    start_new_session=True,
                    preexec_fn=self._preexec,
                )
                ended = self._wait(proc, stop)
            return self._outcome(proc.returncode, ended, workdir)
        finally:
            if not self.keep_workdir:
                shutil.rmtree(workdir, ignore_errors=True)

    def _wait(self, proc: subprocess.Popen[bytes], stop: threading.Event | None) -> str | None:
        """Wait for the child; returns "timeout" or "stop" if we killed it, else None."""
        deadline = time.monotonic() + self.timeout_s
        ended: str | None = None
        kill_at = float("inf")
        while not _exited(proc.pid):
            now = time.monotonic()
            if ended is None and stop is not None and stop.is_set():
                ended, kill_at = "stop", now
            elif ended is None and now >= deadline:
                ended, kill_at = "timeout", now + self.grace_s
                _killpg(proc.pid, signal.SIGTERM)
            if now >= kill_at:
                _killpg(proc.pid, signal.SIGKILL)
                kill_at = float("inf")
            time.sleep(0.02)
        _killpg(proc.pid, signal.SIGKILL)  # the leader is a zombie: its pgid cannot be reused
        proc.wait()
        return ended

    def _outcome(self, code: int, ended: str | None, workdir: Path) -> Outcome:
        if ended == "timeout":
            return Outcome(False, f"timed out after {self.timeout_s:g}s")
        if ended == "stop":
            return Outcome(False, "stopped: the worker lost its lease or the job was cancelled")
        limit = self.memory_limit_bytes
        mem = f"exceeded memory limit ({limit / MiB:g} MiB)" if limit else "out of memory"
        errors = [json.loads(p.read_text()) for p in workdir.glob("error-*.json")]
        if errors:
            err = min(errors, key=lambda e: (e["ts"], e["rank"]))  # the root cause
            where = f" (rank {err['rank']})" if err.get("rank") else ""
            if err["type"] == "MemoryError":
                return Outcome(False, f"{mem}: MemoryError {err['message']}{where}".rstrip())
            return Outcome(False, f"trainer raised {err['type']}: {err['message']}{where}")
        if code == EXIT_MEMORY:
            return Outcome(False, f"{mem}: MemoryError")
        if code == -signal.SIGKILL:
            why = mem if limit else "killed by SIGKILL (the kernel's OOM killer?)"
            return Outcome(False, f"{why}: killed by SIGKILL")
        if code != 0:
            how = f"killed by {_signame(-code)}" if code < 0 else f"exited with code {code}"
            tail = _tail(workdir / "stderr.log")
            return Outcome(False, f"trainer {how}" + (f"; stderr: {tail}" if tail else ""))
        result_path = workdir / "result.json"
        if not result_path.exists():
            return Outcome(False, "trainer exited with code 0 without writing a result")
        value = json.loads(result_path.read_text())["result"]
        result = value if isinstance(value, dict) else {"value": value}
        return Outcome(True, "succeeded", result)


class TorchrunExecutor(SubprocessExecutor):
    """A job under ``torchrun --standalone --nproc-per-node N``: one rendezvous on this host.

    The trainer initialises its own process group (``nccl`` on GPUs, ``gloo`` on CPU) from the
    environment torchrun sets; rank 0's return value is the result. No memory limit by default:
    CUDA maps far more address space than it uses, which ``RLIMIT_AS`` would refuse.
    """

    def __init__(
        self,
        nproc: int,
        timeout_s: float,
        memory_limit_bytes: int | None = None,
        python: str = sys.executable,
        *,
        extra_args: Sequence[str] = (),
        grace_s: float = 15.0,
        **kwargs: Any,
    ) -> None:
        if nproc < 1:
            raise ValueError(f"nproc must be >= 1, not {nproc}")
        super().__init__(timeout_s, memory_limit_bytes, python, grace_s=grace_s, **kwargs)
        self.nproc = nproc
        self.extra_args = list(extra_args)

    def command(self, spec_path: Path) -> list[str]:
        """``python -m torch.distributed.run --standalone ... -m driftd.retrain.jobrun SPEC``."""
        return [
            self.python,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            str(self.nproc),
            *self.extra_args,
            "-m",
            "driftd.retrain.jobrun",
            str(spec_path),
        ]


def _exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it (so its pgid stays reserved)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
