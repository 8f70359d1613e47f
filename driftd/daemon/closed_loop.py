"""The closed loop's parts of the daemon: labeled rows → retrain triggers → worker, the
rollout controller with its metrics, and the leader's outbox relay. Built only for models
(and registries) that configure them; the decisions run only while this instance leads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from driftd.config import ModelSettings, Settings
from driftd.daemon.leader import Leader
from driftd.daemon.metrics.rollout import RolloutCollector
from driftd.daemon.runner import RunnerHooks

if TYPE_CHECKING:
    from driftd.registry.outbox import Dispatcher
    from driftd.registry.registry import Registry
    from driftd.retrain.worker import Worker
    from driftd.rollout.evidence import Verdict

log = logging.getLogger("driftd.closed_loop")


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
    settings: Settings, config_path: Path | None, registry: Registry, decisions: Registry
) -> tuple[RunnerHooks | None, RetrainParts | None]:
    """The labeled store sink, alarm → retrain triggers and the worker, when a model has a
    ``[models.<name>.retrain]`` section; nothing otherwise. The triggers queue jobs through
    ``decisions`` (the leader's fenced registry); the worker uses ``registry``."""
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
    triggers = Triggers(sections, config_path, JobQueue(decisions.engine))
    # Rows are counted at the leader, over every partition's merged stream: this instance's
    # sink stores only the rows of the partitions it holds.
    sink = LabeledSink(store, models)
    parts = RetrainParts(make_worker(r, sections, registry) if r.worker else None)
    hooks = RunnerHooks(
        labeled=sink,
        on_alarm=triggers.on_alarm,
        tick=triggers.tick,
        on_labeled=triggers.rows_added,
    )
    return hooks, parts


def build_rollout(
    models: Mapping[str, ModelSettings],
    leader: Leader,
    metrics: CollectorRegistry,
    registry: Registry,
) -> Callable[[], object] | None:
    """The rollout controller's tick, when a model configures ``[models.<name>.rollout]``: it
    judges the leader's merged counts at the leader's event clock, and its verdicts are
    exported on ``metrics`` while this instance leads."""
    from driftd.rollout.actions import RegistryActions
    from driftd.rollout.controller import Controller, rollout_sections
    from driftd.rollout.store import RolloutStore

    sections = rollout_sections(models)
    if not sections:
        return None
    controller = Controller(
        sections,
        RolloutStore(registry.engine),
        RegistryActions(registry),
        leader.version_total,
        leader.event_clock,
    )

    def verdicts() -> Mapping[str, Verdict]:
        return controller.last_verdicts() if leader.leading else {}

    metrics.register(RolloutCollector(verdicts))
    leader.on_step_down.append(controller.forget)
    return controller.tick


@dataclass
class OutboxThread:
    """Delivers the registry's outbox while this instance leads (one relay for the system)."""

    dispatcher: Dispatcher
    leader: Leader
    poll_s: float = 1.0
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self.stop.is_set():
            if self.leader.leading:
                try:
                    self.dispatcher.run_once()
                except Exception:
                    log.exception("outbox delivery failed")
            self.stop.wait(self.poll_s)

    def start(self) -> None:
        """Start the relay thread."""
        self.thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop the relay thread."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=30)


def build_outbox(settings: Settings, registry: Registry, leader: Leader) -> OutboxThread | None:
    """The leader's outbox relay, when webhooks or a control topic are configured."""
    from driftd.registry.outbox import KafkaControl, dispatcher_from_settings

    rs = settings.registry
    if not rs.webhooks and not rs.control_topic:
        return None
    kafka = None
    if rs.control_topic:
        kafka = KafkaControl(rs.control_bootstrap_servers, rs.control_topic)
    return OutboxThread(dispatcher_from_settings(registry.engine, rs.webhooks, kafka), leader)
