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

from prometheus_client import CollectorRegistry, start_http_server

from driftd.config import FileSourceSettings, KafkaSourceSettings, Settings
from driftd.contracts.monitor import Monitor
from driftd.daemon.abc import DeadLetterSink, Source
from driftd.daemon.checkpoint import SqlCheckpointStore
from driftd.daemon.closed_loop import RetrainParts, build_retrain, build_rollout, combine
from driftd.daemon.columns import ModelSchema
from driftd.daemon.detector_monitor import DetectorMonitor, check_detectors
from driftd.daemon.metrics import Recorder, StateCollector
from driftd.daemon.pipeline import Pipeline
from driftd.daemon.runner import Runner
from driftd.daemon.sinks import FileDeadLetterSink
from driftd.daemon.sources.file import FileSource
from driftd.db import make_engine

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
    # One registry (and engine) for metrics, retraining and rollout.
    model_registry: Registry | None = None

    def close(self) -> None:
        """Release the source, sink, store, retrain worker and HTTP server."""
        if self.retrain is not None:
            self.retrain.close()
        if self.model_registry is not None:
            self.model_registry.engine.dispose()
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
    """The pipeline with each model's configured detectors as extra monitors; it reads the
    wall clock (to refuse events from the future) only when following a live source."""
    check_detectors(settings.models)

    def extra(name: str, schema: ModelSchema) -> list[Monitor]:
        model = settings.models[name]
        return [DetectorMonitor(name, schema, model)] if model.detectors else []

    src = settings.source
    live = isinstance(src, KafkaSourceSettings) or src.follow
    clock = time.time if live else None
    return Pipeline(settings.models, settings.ingest, settings.join, extra, clock=clock)


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
    recorder = Recorder(registry, tasks, pipeline)
    src = settings.source
    source: Source
    sink: DeadLetterSink
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
    from driftd.rollout.store import RolloutStore

    if model_registry is None:
        model_registry = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    hooks, retrain = build_retrain(settings, config_path, model_registry)
    rollouts = RolloutStore(model_registry.engine)
    tick = build_rollout(settings.models, pipeline, registry, model_registry, rollouts)
    hooks = combine(hooks, tick)
    runner = Runner(pipeline, source, sink, store, settings.pipeline, recorder, hooks=hooks)
    registry.register(StateCollector(pipeline, source.lag, lambda: runner.last_checkpoint_at))
    registry.register(RegistryCollector(model_registry.engine))
    app = App(settings, pipeline, source, sink, store, registry, runner, retrain=retrain)
    app.model_registry = model_registry
    if serve_metrics and settings.metrics.enabled:
        app.server = start_http_server(
            settings.metrics.port, settings.metrics.host, registry=registry
        )
        log.info(
            "metrics served", extra={"host": settings.metrics.host, "port": settings.metrics.port}
        )
    return app


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
    # A file source assigns its partition now; Kafka calls assign/revoke on rebalances.
    app.source.bind(app.runner)
    app.runner.run(until_exhausted=lambda: app.source.exhausted)
