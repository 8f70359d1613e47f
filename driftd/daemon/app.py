"""The composition root: builds the pipeline, source, sink, store and recorder once.

Nothing else in driftd creates an engine, a Kafka client or a metrics registry.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from driftd.config import FileSourceSettings, KafkaSourceSettings, Settings
from driftd.daemon.abc import DeadLetterSink, Source
from driftd.daemon.brain import Brain
from driftd.daemon.checkpoint import SqlCheckpointStore
from driftd.daemon.closed_loop import (
    OutboxThread,
    RetrainParts,
    build_outbox,
    build_retrain,
    build_rollout,
)
from driftd.daemon.detector_monitor import check_detectors
from driftd.daemon.leader import Leader
from driftd.daemon.lease import Lease, set_session_timeouts
from driftd.daemon.metrics import Recorder, StateCollector
from driftd.daemon.metrics.leader import LeaderCollector
from driftd.daemon.metrics.serve import serve
from driftd.daemon.pipeline import Pipeline
from driftd.daemon.runner import Runner
from driftd.daemon.sinks import FileDeadLetterSink
from driftd.daemon.sources.file import FileSource
from driftd.db import fence_writes, make_engine

if TYPE_CHECKING:
    import threading
    from wsgiref.simple_server import WSGIServer

    from driftd.registry.registry import Registry

log = logging.getLogger("driftd.app")


@dataclass
class App:
    """The running daemon's parts."""

    settings: Settings
    pipeline: Pipeline
    source: Source
    sink: DeadLetterSink
    store: SqlCheckpointStore
    registry: CollectorRegistry
    runner: Runner
    server: tuple[WSGIServer, threading.Thread] | None = None  # the /metrics endpoint
    retrain: RetrainParts | None = None
    # One registry (and engine) for metrics and retraining, one for the leader's decisions.
    model_registry: Registry | None = None
    decisions: Registry | None = None
    outbox: OutboxThread | None = None

    def close(self) -> None:
        """Release the source, sink, store, retrain worker and HTTP server."""
        if self.retrain is not None:
            self.retrain.close()
        if self.outbox is not None:
            self.outbox.close()
        for reg in (self.model_registry, self.decisions):
            if reg is not None:
                reg.engine.dispose()
        self.source.close()
        self.sink.close()
        self.store.close()
        if self.server is not None:
            self.server[0].shutdown()


def dlq_path(settings: Settings, src: FileSourceSettings) -> Path:
    """The dead-letter file of a file source: ``<data_dir>/<first file stem>.dlq.jsonl``."""
    stem = src.paths[0].name.split(".")[0] or "events"
    return settings.pipeline.data_dir / f"{stem}.dlq.jsonl"


def build_pipeline(settings: Settings) -> Pipeline:
    """The pipeline of partition state; it reads the wall clock (to refuse events from the
    future) only when following a live source. The detectors run at the leader."""
    check_detectors(settings.models)
    src = settings.source
    live = isinstance(src, KafkaSourceSettings) or src.follow
    clock = time.time if live else None
    return Pipeline(
        settings.models, settings.ingest, settings.join, clock=clock, leader=settings.leader
    )


def build(
    settings: Settings,
    serve_metrics: bool = True,
    config_path: Path | None = None,
    model_registry: Registry | None = None,
) -> App:
    """Wire every part from the settings; nothing starts consuming yet. ``config_path`` lets
    queued retrain jobs read the same configuration; ``model_registry`` is one the caller
    opened (the app takes it over: ``App.close`` releases it), else one is opened here."""
    pipeline = build_pipeline(settings)
    store = SqlCheckpointStore.open(
        make_engine(settings.checkpoint.url), settings.checkpoint.chunk_bytes
    )
    registry = CollectorRegistry()
    tasks = {name: m.task for name, m in settings.models.items()}
    src = settings.source
    source: Source
    sink: DeadLetterSink
    name = settings.pipeline.name
    ls = settings.leader
    lease = Lease(store.engine, name, ls.lease_s, ls.renew_s)
    leader = Leader(
        lambda: Brain(settings.models, ls),
        store,
        name,
        ls,
        lease,
        expected=lambda: partition_ids(source),
    )
    recorder = Recorder(registry, tasks, pipeline, alarms=leader.alarms)
    if isinstance(src, FileSourceSettings):
        source = FileSource(
            src.paths,
            settings.ingest.max_event_bytes,
            follow=src.follow,
            on_change=recorder.source_changed,
        )
        sink = FileDeadLetterSink(dlq_path(settings, src))
    else:
        assert isinstance(src, KafkaSourceSettings)
        from driftd.daemon.sources.factory import make_kafka

        source, sink = make_kafka(src.kafka, settings.pipeline.name)
    from driftd.daemon.metrics.registry import RegistryCollector
    from driftd.registry.configure import open_registry

    if model_registry is None:
        model_registry = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    if any(c.reference == "champion" for m in settings.models.values() for c in m.checks):
        from driftd.daemon.references import ChampionReferences

        leader.references = ChampionReferences(model_registry, settings.models)
    # The leader's decisions go through their own engine, every write fenced by its epoch
    # (the lease lives in the checkpoint database: the fence needs the registry there too).
    decisions = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    if settings.registry_url == settings.checkpoint.url:
        fence_writes(decisions.engine, lease.fence)
    else:
        log.warning(
            "registry.url is not the checkpoint database: the leader's registry writes are "
            "not fenced by its lease; run one instance, or keep both in one database"
        )
    idle_ms = int(max(1.0, ls.lease_s / 3) * 1000)
    for engine in (store.engine, decisions.engine):
        set_session_timeouts(engine, idle_ms)
    if settings.incidents.enabled:
        from driftd.daemon.incidents import IncidentCollector, IncidentHook
        from driftd.incidents.store import IncidentStore

        incidents = IncidentStore.configured(decisions, settings.incidents)  # fenced writes
        leader.on_incidents = IncidentHook(incidents, leader.event_clock)
        reads = IncidentStore.configured(model_registry, settings.incidents)
        registry.register(IncidentCollector(reads))
    hooks, retrain = build_retrain(settings, config_path, model_registry, decisions)
    tick = build_rollout(settings.models, leader, registry, decisions)
    leader.on_bucket = tick
    outbox = build_outbox(settings, decisions, leader) if ls.outbox else None
    runner = Runner(
        pipeline, source, sink, store, settings.pipeline, recorder, hooks=hooks, leader=leader
    )
    registry.register(StateCollector(pipeline, source.lag, lambda: runner.last_checkpoint_at))
    registry.register(RegistryCollector(model_registry.engine))
    registry.register(LeaderCollector(leader))
    app = App(settings, pipeline, source, sink, store, registry, runner, retrain=retrain)
    app.model_registry = model_registry
    app.decisions = decisions
    app.outbox = outbox
    if serve_metrics and settings.metrics.enabled:
        app.server = serve(
            registry, settings.metrics.host, settings.metrics.port, runner.not_ready,
            runner.not_alive,
        )  # fmt: skip
        log.info(
            "metrics served", extra={"host": settings.metrics.host, "port": settings.metrics.port}
        )
    return app


def partition_ids(source: Source) -> list[int]:
    """The partitions the source says exist (the leader waits for each), or none known."""
    ids = getattr(source, "partition_ids", None)
    return list(ids()) if callable(ids) else []


def install_signal_handlers(runner: Runner) -> None:
    """SIGTERM and SIGINT stop the loop after its batch and a final checkpoint."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        runner.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run(app: App) -> None:
    """Restore, then run until stopped."""
    install_signal_handlers(app.runner)
    if app.retrain is not None:
        app.retrain.start()
    if app.outbox is not None:
        app.outbox.start()
    # A file source assigns its partition now; Kafka calls assign/revoke on rebalances.
    app.source.bind(app.runner)
    app.runner.run(until_exhausted=lambda: app.source.exhausted)
