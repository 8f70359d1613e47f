"""Logs go to stderr, never among a command's output: JSON lines off a terminal, Optuna's
records through the same handler, and the retrain worker says what it does with each job."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftd.logs import adopt_library_logs, install
from driftd.retrain.abc import Job, Outcome


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """``install`` replaces the root logger's handlers: put pytest's back after."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    yield
    root.handlers[:] = saved
    root.setLevel(level)


@pytest.mark.usefixtures("root_handlers")
def test_optuna_logs_through_the_root_handler_as_json_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import optuna

    install("json", "INFO")
    adopt_library_logs()
    try:
        optuna.logging.get_logger("optuna.test").info("Trial 0 finished with value: 0.9")
        logging.getLogger("optuna.test").debug("below the level: dropped")
    finally:
        optuna.logging.enable_default_handler()
        optuna.logging.disable_propagation()
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    record = json.loads(line)
    assert record["logger"] == "optuna.test" and record["msg"].startswith("Trial 0 finished")
    assert record["ts"].endswith("Z")


@pytest.mark.usefixtures("root_handlers")
def test_a_library_logging_below_the_level_is_not_shown(capsys: pytest.CaptureFixture[str]) -> None:
    install("json", "WARNING")
    lib = logging.getLogger("somelib")
    lib.setLevel(logging.INFO)  # as Optuna sets its own logger's level
    try:
        lib.info("not shown")  # propagated records obey the handler's level too
        lib.warning("shown")
    finally:
        lib.setLevel(logging.NOTSET)
    err = capsys.readouterr().err
    assert "not shown" not in err and "shown" in err


class Succeeds:
    def run(self, job: Job, stop: threading.Event | None = None) -> Outcome:
        result = {"version": 4, "promoted": False, "run_id": "r9", "evaluation": {
            "primary": {"metric": "roc_auc", "lower_bound": -0.01}}}  # fmt: skip
        return Outcome(True, "done", result)


class Fails:
    def run(self, job: Job, stop: threading.Event | None = None) -> Outcome:
        return Outcome(False, "trainer exited 1")


@pytest.mark.parametrize("executor", [Succeeds(), Fails()], ids=["finished", "failed"])
def test_the_retrain_worker_logs_each_job(
    executor: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from driftd.db import make_engine, upgrade
    from driftd.retrain.jobs import JobQueue
    from driftd.retrain.worker import Worker

    engine = make_engine(f"sqlite:///{tmp_path}/jobs.db")
    upgrade(engine)
    queue = JobQueue(engine)
    job = queue.submit("fraud", {"kind": "manual", "key": "k1"}, {"entry": "x"}).job
    assert job is not None
    with caplog.at_level(logging.INFO, logger="driftd.retrain.worker"):
        Worker(queue, executor, "w1", lease_s=60).run_once()
    engine.dispose()

    records = [r for r in caplog.records if r.name == "driftd.retrain.worker"]
    said = [r.getMessage() for r in records]
    assert any(" picked" in m and "trigger manual" in m for m in said), said
    assert any(m.endswith("attempt 1 started") for m in said), said
    last = records[-1]
    assert (last.job_id, last.model, last.attempt) == (job.id, "fraud", 1)  # type: ignore[attr-defined]
    if isinstance(executor, Succeeds):
        assert "finished" in said[-1] and last.version == 4 and last.promoted is False  # type: ignore[attr-defined]
        assert last.primary == {"metric": "roc_auc", "lower_bound": -0.01}  # type: ignore[attr-defined]
    else:
        assert "failed: trainer exited 1" in said[-1] and last.levelno == logging.WARNING
