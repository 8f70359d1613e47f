"""The closed loop's parts of the daemon: labeled rows → retrain triggers → worker, and the
rollout controller with its metrics. Built only for models that configure them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from driftd.config import ModelSettings, Settings
from driftd.daemon.metrics.rollout import RolloutCollector
from driftd.daemon.pipeline import Pipeline
from driftd.daemon.runner import RunnerHooks
from driftd.rollout.counts import Totals

if TYPE_CHECKING:
    from driftd.registry.registry import Registry
    from driftd.retrain.worker import Worker
    from driftd.rollout.store import RolloutStore


@dataclass
class RetrainParts:
    """The retraining side of the daemon: the worker and its thread."""

    worker: Worker | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        """Run queued retrain jobs in a background thread (never in the event loop)."""
        if self.worker is None:
            return
        self.thread = threading.Thread(
            target=self.worker.run_forever, args=(self.stop,), name="retrain-worker", daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        """Stop the worker (a running job is killed and retried by the next worker)."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=30)


def build_retrain(
    settings: Settings, config_path: Path | None, registry: Registry
) -> tuple[RunnerHooks | None, RetrainParts | None]:
    """The labeled store sink, alarm → retrain triggers and the worker, when a model has a
    ``[models.<name>.retrain]`` section; nothing otherwise."""
    models = [n for n, m in settings.models.items() if m.retrain is not None and m.retrain.enabled]
    if not models:
        return None, None
    from driftd.daemon.labeled import LabeledSink
    from driftd.retrain.jobs import JobQueue
    from driftd.retrain.store import LabeledStore
    from driftd.retrain.triggers import Triggers, make_worker, retrain_sections

    r = settings.retrain
    store = LabeledStore(
        r.store_dir, retention_days=r.retention_days, max_buffer_rows=r.store_flush_rows
    )
    if config_path is None:  # replay: store rows, queue nothing (a job needs the config file)
        return RunnerHooks(labeled=LabeledSink(store, models)), None
    sections = retrain_sections(settings.models)
    triggers = Triggers(sections, config_path, JobQueue(registry.engine))
    sink = LabeledSink(store, models, on_rows=triggers.rows_added)
    parts = RetrainParts(make_worker(r, sections, registry) if r.worker else None)
    return RunnerHooks(labeled=sink, on_alarm=triggers.on_alarm, tick=triggers.tick), parts


def build_rollout(
    models: Mapping[str, ModelSettings],
    pipeline: Pipeline,
    metrics: CollectorRegistry,
    registry: Registry,
    store: RolloutStore,
) -> Callable[[], object] | None:
    """The rollout controller's tick, when a model configures ``[models.<name>.rollout]``; its
    verdicts and evidence are exported on ``metrics``."""
    from driftd.rollout.actions import RegistryActions
    from driftd.rollout.controller import Controller, rollout_sections

    sections = rollout_sections(models)
    if not sections:
        return None

    def counts(model: str, version: str) -> Totals:
        return pipeline.version_total(model, version)

    controller = Controller(
        sections, store, RegistryActions(registry), counts, pipeline.newest_prediction_ts
    )
    metrics.register(RolloutCollector(controller.last_verdicts))
    return controller.tick


def combine(hooks: RunnerHooks | None, tick: Callable[[], object] | None) -> RunnerHooks | None:
    """One set of hooks with both ticks (retrain schedules, rollout)."""
    if tick is None:
        return hooks
    if hooks is None:
        return RunnerHooks(tick=tick)
    first = hooks.tick

    def both() -> None:
        if first is not None:
            first()
        tick()

    return RunnerHooks(labeled=hooks.labeled, on_alarm=hooks.on_alarm, tick=both)
