"""From the daemon's alarms and the clock to queued retrain jobs, and the worker that runs them.

``Triggers`` is called by the daemon loop for every drift alarm and once per loop for the cron
schedules; it asks each model's ``TriggerPolicy`` and submits a job whose id derives from the
trigger, so a replayed alarm never queues the same retrain twice. ``PerModelExecutor`` picks
each model's executor (subprocess or torchrun, with its timeout and memory limit).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from driftd.config import ModelSettings
from driftd.config.retrain import ModelRetrainSettings, RetrainSettings
from driftd.contracts.monitor import DriftDetected
from driftd.registry import Registry
from driftd.retrain.abandoned import run_sweeper
from driftd.retrain.abc import Executor, Job, JobStore, Outcome, Submission
from driftd.retrain.executor import SubprocessExecutor, TorchrunExecutor
from driftd.retrain.jobs import JobQueue
from driftd.retrain.policy import (
    TriggerPolicy,
    alarm_trigger,
    manual_trigger,
    schedule_trigger,
)
from driftd.retrain.worker import Worker

log = logging.getLogger("driftd.retrain")
JOB_ENTRY = "driftd.retrain.service:run_job"


def retrain_sections(models: Mapping[str, ModelSettings]) -> dict[str, ModelRetrainSettings]:
    """Each model's ``[models.<name>.retrain]`` section, for the models that have one."""
    return {name: ms.retrain for name, ms in models.items() if ms.retrain is not None}


def policy_of(rs: ModelRetrainSettings) -> TriggerPolicy:
    """A model's trigger policy from its settings."""
    return TriggerPolicy(
        kinds=tuple(rs.on),
        detectors=tuple(rs.detectors),
        streams=tuple(rs.streams),
        min_new_rows=rs.min_new_rows,
        cooldown_s=rs.cooldown_s,
        cron=rs.schedule,
        max_attempts=rs.max_attempts,
        backoff_s=rs.backoff_s,
        max_backoff_s=rs.max_backoff_s,
    )


def job_spec(config: Path, model: str, trigger: Mapping[str, Any]) -> dict[str, Any]:
    """What a job runs: ``service.run_job`` with the config file, the model and its trigger."""
    return {
        "entry": JOB_ENTRY,
        "params": {"config": str(config.resolve()), "model": model, "trigger": dict(trigger)},
    }


class Triggers:
    """Alarms and schedules in, queued jobs out (one submission per trigger)."""

    def __init__(
        self,
        models: Mapping[str, ModelRetrainSettings],
        config: Path,
        queue: JobStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.queue = queue
        self.clock = clock
        self.models = {name: rs for name, rs in models.items() if rs.enabled}
        self.policies = {name: policy_of(rs) for name, rs in self.models.items()}
        self.new_rows: Counter[str] = Counter()  # labeled rows since the last submitted job
        # An alarm waiting for rows_after_alarm labeled rows, and the rows seen since it.
        self.waiting: dict[str, tuple[DriftDetected, int]] = {}
        now = dt.datetime.fromtimestamp(clock(), dt.UTC)
        self.next_fire = {
            name: p.next_scheduled(now) for name, p in self.policies.items() if p.cron
        }

    def rows_added(self, model: str, n: int) -> None:
        """Count labeled rows stored for ``model`` (the policy's ``min_new_rows``)."""
        self.new_rows[model] += n
        if model in self.waiting:
            alarm, seen = self.waiting[model]
            self.waiting[model] = (alarm, seen + n)

    def _submit(self, model: str, trigger: dict[str, Any]) -> Submission:
        rs, policy = self.models[model], self.policies[model]
        sub = self.queue.submit(
            model,
            trigger,
            job_spec(self.config, model, trigger),
            policy.max_attempts,
            cooldown_s=rs.cooldown_s,
            backoff_s=policy.backoff_s,
            max_backoff_s=policy.max_backoff_s,
        )
        if sub.created:
            self.new_rows[model] = 0
            log.info("retrain queued", extra={"model": model, "job": sub.job and sub.job.id})
        return sub

    def on_alarm(self, alarm: DriftDetected) -> Submission | None:
        """Queue a retrain if the model's policy says this alarm should start one."""
        policy = self.policies.get(alarm.model)
        if policy is None:
            return None
        now = self.clock()
        decision = policy.should_retrain(
            alarm, self.new_rows[alarm.model], self.queue.last_activity(alarm.model), now
        )
        if not decision.ok:
            log.debug("no retrain", extra={"model": alarm.model, "reason": decision.reason})
            return None
        if self.models[alarm.model].rows_after_alarm > 0:
            self.waiting.setdefault(alarm.model, (alarm, 0))  # the first alarm is the trigger
            return None
        return self._submit(alarm.model, alarm_trigger(alarm))

    def tick(self) -> list[Submission]:
        """Queue the alarms whose rows have arrived and the scheduled retrains that are due."""
        out = []
        for model, (alarm, seen) in list(self.waiting.items()):
            if seen >= self.models[model].rows_after_alarm:
                del self.waiting[model]
                out.append(self._submit(model, alarm_trigger(alarm)))
        now = self.clock()
        for model, fire in list(self.next_fire.items()):
            if fire is None or fire.timestamp() > now:
                continue
            policy = self.policies[model]
            self.next_fire[model] = policy.next_scheduled(fire)
            decision = policy.should_retrain(
                None, self.new_rows[model], self.queue.last_activity(model), now
            )
            if decision.ok:
                out.append(self._submit(model, schedule_trigger(fire)))
            else:
                log.info(
                    "scheduled retrain skipped", extra={"model": model, "reason": decision.reason}
                )
        return out

    def manual(self, model: str, request_id: str) -> Submission:
        """Queue a retrain an operator asked for (``driftd retrain submit``)."""
        if model not in self.models:
            raise KeyError(f"model {model!r} has no enabled [models.{model}.retrain] section")
        return self._submit(model, manual_trigger(request_id))


class PerModelExecutor:
    """Runs each job with its model's executor; unknown models fail with a reason."""

    def __init__(self, models: Mapping[str, ModelRetrainSettings], work_root: Path) -> None:
        self.executors: dict[str, Executor] = {}
        for name, rs in models.items():
            limit = rs.memory_limit_mb * 2**20 if rs.memory_limit_mb else None
            if rs.executor == "torchrun":
                self.executors[name] = TorchrunExecutor(
                    rs.nproc, rs.timeout_s, limit, work_root=work_root
                )
            else:
                self.executors[name] = SubprocessExecutor(rs.timeout_s, limit, work_root=work_root)

    def run(self, job: Job, stop: threading.Event | None = None) -> Outcome:
        """Run ``job`` with its model's executor."""
        executor = self.executors.get(job.model)
        if executor is None:
            return Outcome(False, f"model {job.model!r} has no [retrain] section", None)
        return executor.run(job, stop)


def make_worker(
    retrain: RetrainSettings,
    models: Mapping[str, ModelRetrainSettings],
    registry: Registry,
) -> Worker:
    """A worker on the registry database's job queue with per-model executors; it closes the
    runs of attempts that died (``driftd.retrain.abandoned``) through ``registry``."""
    work = retrain.work_dir / "jobs"
    work.mkdir(parents=True, exist_ok=True)
    queue = JobQueue(registry.engine)
    sweep = run_sweeper(registry, queue)
    return Worker(queue, PerModelExecutor(models, work), lease_s=retrain.lease_s, sweep=sweep)
