"""The child process of a retrain job: ``python -m driftd.retrain.jobrun SPEC.json``.

Reads the job spec, imports the trainer ``entry`` (``module:function``), calls it with the
spec's ``params`` as keyword arguments and writes its JSON result atomically to
``result.json`` beside the spec (on torchrun, rank 0 only). A failure is written to
``error-<rank>.json`` with the exception's type and message, so that the executor can report
"trainer raised ValueError: ..." rather than a bare exit code.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_RAISED = 3
EXIT_MEMORY = 4
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (a no-op elsewhere).

    The executor sets this in ``preexec_fn`` for its direct child; ``jobrun`` sets it again so
    that torchrun's ranks die with the torchrun agent that the executor started.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` via a fsynced temp file and a rename: whole or absent."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_entry(entry: str) -> Callable[..., Any]:
    """The function named by ``module:function`` (dots allowed after the colon)."""
    module, sep, name = entry.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"trainer entry {entry!r} is not of the form module:function")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"trainer entry {entry!r} is not callable")
    return obj  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    """Run the job in ``argv[0]`` (a spec file); the exit code says how it ended."""
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:  # the parent died before prctl took effect
        return 1
    args = sys.argv[1:] if argv is None else argv
    spec_path = Path(args[0])
    out = spec_path.parent
    rank = int(os.environ.get("RANK", "0"))
    try:
        spec = json.loads(spec_path.read_text())
        result = load_entry(spec["entry"])(**spec.get("params", {}))
        if rank == 0:
            write_json_atomic(out / "result.json", {"result": result})
        return 0
    except MemoryError as exc:
        error = {"type": "MemoryError", "message": str(exc), "rank": rank, "ts": time.time()}
        code = EXIT_MEMORY
    except BaseException as exc:  # every failure is reported, then exits
        error = {
            "type": type(exc).__name__,
            "message": str(exc),
            "rank": rank,
            "ts": time.time(),  # the first error is the cause; other ranks' follow from it
            "traceback": traceback.format_exc()[-4000:],
        }
        code = EXIT_RAISED
    try:
        write_json_atomic(out / f"error-{rank}.json", error)
    except Exception:  # best effort: the exit code still says it failed
        traceback.print_exc()
    print(f"trainer raised {error['type']}: {error['message']}", file=sys.stderr)  # noqa: T201
    return code


if __name__ == "__main__":
    sys.exit(main())
