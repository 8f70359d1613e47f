"""Executors and the worker: a trainer that raises, one that exceeds its memory limit and one
that hangs each fail with their reason, the retry policy is followed, and a thread running the
worker does not stop the daemon's own loop."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from driftd.retrain.executor import SubprocessExecutor, TorchrunExecutor
from driftd.retrain.jobs import Job, JobQueue
from driftd.retrain.worker import Worker

LIMIT = 256 << 20


def job(entry: str, **params: Any) -> Job:
    return Job(
        id="f" * 32,
        model="m",
        state="running",
        trigger={"kind": "manual", "key": "t"},
        spec={"entry": f"tests.retrain.trainers:{entry}", "params": params},
        attempts=1,
        max_attempts=1,
        backoff_s=0,
        max_backoff_s=0,
        next_attempt_at=0,
        created_at=0,
        started_at=0,
        finished_at=None,
        error=None,
        owner="w",
        heartbeat_at=0,
        lease_until=60,
        result=None,
    )


@pytest.fixture(scope="module")
def executor() -> SubprocessExecutor:
    return SubprocessExecutor(timeout_s=2, memory_limit_bytes=LIMIT, grace_s=0.5)


def test_success_returns_the_trainers_result(executor: SubprocessExecutor) -> None:
    out = executor.run(job("ok", value=7))
    assert out.ok and out.reason == "succeeded"
    assert out.result is not None and out.result["value"] == 7 and out.result["job"] == "f" * 32


def test_the_failing_trainers_reasons(executor: SubprocessExecutor) -> None:
    raised = executor.run(job("raises", message="lr must be > 0"))
    assert not raised.ok and raised.reason == "trainer raised ValueError: lr must be > 0"
    hog = executor.run(job("hog", nbytes=2 << 30))
    assert not hog.ok and hog.reason.startswith("exceeded memory limit (256 MiB): MemoryError")
    t0 = time.monotonic()
    hung = executor.run(job("hang"))
    assert not hung.ok and hung.reason == "timed out after 2s"
    assert time.monotonic() - t0 < 5
    died = executor.run(job("exits", code=7))
    assert not died.ok and died.reason == "trainer exited with code 7"
    missing = executor.run(job("nope"))
    assert not missing.ok and missing.reason.startswith("trainer raised AttributeError")


def test_stop_kills_the_trainer_at_once(executor: SubprocessExecutor) -> None:
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    t0 = time.monotonic()
    out = executor.run(job("hang"), stop)
    assert not out.ok and out.reason.startswith("stopped") and time.monotonic() - t0 < 1.8


def test_failing_trainers_follow_the_retry_policy_while_the_daemon_goes_on(
    queue: JobQueue,
) -> None:
    queue.clock = time.time
    cases = {
        "raises": ({}, "trainer raised ValueError: bad hyperparameter"),
        "hog": ({"nbytes": 2 << 30}, "exceeded memory limit (256 MiB): MemoryError"),
        "hang": ({}, "timed out after 1.5s"),
        "ok": ({}, None),
    }
    for name, (params, _) in cases.items():
        spec = {"entry": f"tests.retrain.trainers:{name}", "params": params}
        sub = queue.submit(name, {"kind": "manual", "key": name}, spec, 2, backoff_s=0.05)
        assert sub.created
    executor = SubprocessExecutor(timeout_s=1.5, memory_limit_bytes=LIMIT, grace_s=0.5)
    worker = Worker(queue, executor, lease_s=10, poll_s=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), daemon=True)
    thread.start()
    # The daemon's event loop, standing in for the pipeline: it must keep its pace. It only
    # ticks (the queue is polled elsewhere), so a gap means the jobs held it up, not SQLite.
    gaps: list[float] = []
    ticking = threading.Event()

    def loop() -> None:
        last = time.monotonic()
        while not ticking.is_set():
            time.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = threading.Thread(target=loop, daemon=True)
    ticker.start()
    deadline = time.monotonic() + 60
    try:
        while any(j.state in ("queued", "running") for j in queue.list()):
            assert time.monotonic() < deadline, queue.list()
            time.sleep(0.05)
    finally:
        stop.set()
        ticking.set()
        thread.join(10)
        ticker.join(10)
    # A worker that ran a job on the loop's thread would stall it for a whole job: at least
    # the hung trainer's 1.5 s timeout. A loaded machine delays a tick by far less.
    assert len(gaps) > 100 and max(gaps) < 1.4, (len(gaps), max(gaps))
    for name, (_, reason) in cases.items():
        (final,) = queue.list(model=name)
        if reason is None:
            assert final.state == "succeeded" and final.attempts == 1
        else:
            assert final.state == "failed" and final.attempts == 2, final
            assert final.error is not None and final.error.startswith(reason), final.error


@pytest.mark.slow
def test_torchrun_two_cpu_processes_with_gloo(tmp_path: Any) -> None:
    spec = {"entry": "tests.retrain.ddp_trainer:allreduce", "params": {}}
    ddp = TorchrunExecutor(2, timeout_s=120, env={"OMP_NUM_THREADS": "1"})
    assert ddp.command(tmp_path / "s.json")[1:6] == [
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    good = _with_spec(spec)
    out = ddp.run(good)
    assert out.ok, out.reason
    assert out.result == {"sum": 3.0, "world_size": 2}
    bad = ddp.run(_with_spec({**spec, "params": {"fail_rank": 1}}))
    assert not bad.ok
    assert bad.reason == "trainer raised RuntimeError: rank 1 failed on purpose (rank 1)"


def _with_spec(spec: dict[str, Any]) -> Job:
    base = job("ok")
    fields = {name: getattr(base, name) for name in Job.__dataclass_fields__}
    return Job(**{**fields, "spec": spec})
