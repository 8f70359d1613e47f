"""``driftd serve-sim``: run the reference model server against the registry, in real time."""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from driftd.sim.server import LabelEmitter, ModelServer, Regression
from driftd.sim.sinks import ControlFollower, JsonlSink, KafkaSink
from driftd.sim.synth import CATEGORIES
from driftd.sim.world import World

if TYPE_CHECKING:
    from driftd.config import Settings
    from driftd.registry.registry import Registry

log = logging.getLogger("driftd.sim")


def initial_version(registry: Registry, model: str) -> str:
    """The version to start on: the champion, else the model's only version."""
    from driftd.registry.errors import NotFound

    try:
        return str(registry.resolve(f"models:/{model}@champion").version)
    except NotFound:
        pass
    try:
        versions = registry.list_versions(model, limit=2)
    except NotFound:
        raise click.ClickException(f"model {model!r} is not in the registry") from None
    if len(versions) != 1:
        raise click.ClickException(
            f"model {model!r} has no champion alias and {len(versions) or 'no'} versions: "
            "set one with `driftd registry alias set` first"
        )
    return str(versions[0].version)


def bootstrap_champion(
    settings: Settings, registry: Registry, model: str, seed: int, rate: float
) -> int | None:
    """Seed a first champion when the registry has no version of ``model`` (else None).

    As ``driftd demo`` does (:func:`driftd.sim.demo.seed_champion`): labeled pre-drift rows of the
    same world (same seed, the model's configured features) into the labeled store, the real
    retrain path, then production with all traffic.
    """
    from driftd.registry.errors import NotFound
    from driftd.sim import demo

    try:
        if registry.list_versions(model, limit=1):
            return None
    except NotFound:
        pass
    if model != demo.MODEL:
        raise click.ClickException(
            f"--bootstrap seeds the demo's model {demo.MODEL!r} only, not {model!r}"
        )
    if settings.models[model].retrain is None:
        raise click.ClickException(f"--bootstrap needs [models.{model}.retrain] to train with")
    world = _world(settings, model, seed, None)  # pre-drift: the concept served before drift
    log.info("no version of %s registered: training a first champion", model)
    version = demo.seed_champion(settings, registry, world, rate)
    log.info("v%s trained on pre-drift traffic and made champion", version)
    return version


def _world(settings: Settings, model: str, seed: int, drift_at: float | None) -> World:
    """A world whose columns are the model's configured features."""
    feats = settings.models[model].features
    numeric = [n for n, k in feats.items() if k == "numeric"]
    categorical = [n for n, k in feats.items() if k == "categorical"]
    use_cats = set(categorical) == set(CATEGORIES)
    if categorical and not use_cats:
        log.warning(
            "the simulated world only knows the categorical features %s; %s will be absent",
            ", ".join(CATEGORIES),
            ", ".join(categorical),
        )
    if not numeric:
        raise click.ClickException(f"model {model!r} has no numeric features to simulate")
    return World(len(numeric), seed, drift_at, categorical=use_cats, numeric_names=numeric)


@click.command("serve-sim")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="driftd.toml: the registry, the model's features and (for Kafka) [source.kafka].",
)
@click.option("--model", help="Model to serve (default: the config's only model).")
@click.option("--rate", default=100.0, show_default=True, help="Requests per second.")
@click.option("--duration", type=float, help="Stop after this many seconds (default: run on).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append events to this JSON-lines file instead of Kafka "
    "(default: the file source's first path, or the Kafka topics of [source.kafka]).",
)
@click.option(
    "--control-topic",
    help="Kafka topic of Deployment events to follow (default: [registry] control_topic).",
)
@click.option(
    "--regress",
    multiple=True,
    metavar="VERSION:latency=F,errors=P,flip=P",
    help="Inject faults into one version: latency factor, error rate, wrong-answer rate. "
    "Repeatable.",
)
@click.option(
    "--error-rate",
    default=0.005,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Share of requests every version fails (before any --regress): a canary's error-rate "
    "check needs some errors on both arms to show the canary is no worse.",
)
@click.option("--label-delay", default=30.0, show_default=True, help="Seconds until a label.")
@click.option("--label-fraction", default=1.0, show_default=True, help="Share of requests labeled.")
@click.option(
    "--drift-after", type=float, help="Seconds after start when the true concept changes."
)
@click.option("--seed", default=0, show_default=True, help="Seed of the world and routing.")
@click.option(
    "--bootstrap",
    "bootstrap_first",
    is_flag=True,
    help="When the registry has no version of the model, train a first champion on pre-drift "
    "traffic of the same world (the real retrain path) and give it all traffic.",
)
@click.option("--status-every", default=10.0, show_default=True, help="Seconds between status.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary when it stops.")
def serve_sim(
    config_path: Path,
    model: str | None,
    rate: float,
    duration: float | None,
    out: Path | None,
    control_topic: str | None,
    regress: tuple[str, ...],
    error_rate: float,
    label_delay: float,
    label_fraction: float,
    drift_after: float | None,
    seed: int,
    bootstrap_first: bool,
    status_every: float,
    as_json: bool,
) -> None:
    """Serve a model's registered versions to a simulated world; emit the events.

    Starts with 100% of traffic on the champion (or the only version), follows the Deployment
    events of the control topic (read from the beginning, so a restart resumes on the last
    weights), writes a Prediction per request and, LABEL-DELAY seconds later, the true Label.
    """
    from driftd.registry.configure import open_registry

    settings = _load(config_path)
    model = _choose_model(settings, model, config_path)
    try:
        regressions = dict(Regression.parse(r) for r in regress)
        emitter = LabelEmitter(label_delay, label_fraction, seed)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None

    registry = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    if bootstrap_first:
        bootstrap_champion(settings, registry, model, seed, rate)
    start = time.time()  # after any bootstrap: --drift-after counts from the first request
    world = _world(settings, model, seed, None if drift_after is None else start + drift_after)
    server = ModelServer(
        world,
        registry,
        model,
        seed=seed,
        emitter=emitter,
        base_error_rate=error_rate,
        id_prefix=f"sim{seed}-{int(start)}",
    )
    first = initial_version(registry, model)
    server.load(first)
    server.apply({first: 1.0})
    for version, reg in regressions.items():
        server.regress(version, reg)

    sink, where = _sink(settings, out)
    follower = _follower(settings, control_topic, model)
    served = _serve_until_stopped(
        server, sink, follower, rate, duration, status_every, f"{model} v{first}", where
    )
    click.echo(f"served {served} requests; {emitter.pending} labels were still pending", err=True)
    if as_json:  # one summary when it stops, as driftd's other long-running commands
        summary = {
            "command": "serve-sim",
            "model": model,
            "served": served,
            "labels_pending": emitter.pending,
            "started_at": _iso(start),
            "stopped_at": _iso(time.time()),
        }
        click.echo(json.dumps(summary, indent=2))
    sys.stdout.flush()


def _iso(ts: float) -> str:
    """ISO 8601 UTC, as driftd's own commands print times (sim sits below driftd.cli)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _load(config_path: Path) -> Settings:
    """The settings, with logging configured by them; a bad config is one clean line."""
    from driftd.config import load_settings
    from driftd.errors import DriftdError
    from driftd.logs import configure

    try:
        settings = load_settings(config_path)
    except DriftdError as exc:
        raise click.ClickException(str(exc)) from None
    configure(settings.log)
    return settings


def _choose_model(settings: Settings, model: str | None, config_path: Path) -> str:
    """``--model``, which must be configured, else the config's only model."""
    if model is None:
        if len(settings.models) != 1:
            raise click.BadParameter(
                f"choose one among {', '.join(settings.models)}", param_hint="--model"
            )
        return next(iter(settings.models))
    if model not in settings.models:
        raise click.BadParameter(f"model {model!r} is not in {config_path}", param_hint="--model")
    return model


def _sink(settings: Settings, out: Path | None) -> tuple[JsonlSink | KafkaSink, str]:
    """Where events go, and its name for the log: ``--out``, else the file source's first
    path, else the Kafka topics of ``[source.kafka]``."""
    kafka = settings.source.kafka if settings.source.kind == "kafka" else None
    if out is None and kafka is None:
        out = settings.source.paths[0]  # type: ignore[union-attr]
    if out is not None:
        return JsonlSink(out), str(out)
    assert kafka is not None
    sink = KafkaSink(kafka.bootstrap_servers, kafka.predictions_topic, kafka.labels_topic)
    return sink, f"kafka {kafka.predictions_topic}/{kafka.labels_topic}"


def _follower(settings: Settings, control_topic: str | None, model: str) -> ControlFollower | None:
    """The control topic's Deployment events for ``model`` (None: no topic configured); on
    the source's brokers when the registry names no control topic of its own."""
    topic = control_topic or settings.registry.control_topic
    if topic is None:
        return None
    kafka = settings.source.kafka if settings.source.kind == "kafka" else None
    bootstrap = settings.registry.control_bootstrap_servers
    if settings.registry.control_topic is None and kafka is not None:
        bootstrap = kafka.bootstrap_servers
    return ControlFollower(bootstrap, topic, model)


def _serve_until_stopped(
    server: ModelServer,
    sink: JsonlSink | KafkaSink,
    follower: ControlFollower | None,
    rate: float,
    duration: float | None,
    status_every: float,
    serving: str,
    where: str,
) -> int:
    """Serve in real time until ``duration``, SIGTERM or Ctrl-C, applying the Deployment
    events that arrive and logging status every ``status_every`` seconds; the requests
    served. The sink and follower are closed after."""
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGTERM, on_signal)
    log.info("serving %s at %.0f req/s to %s", serving, rate, where)
    try:
        return server.run_realtime(
            sink,
            rate,
            duration,
            poll=lambda: _apply_deployments(server, follower),
            status=lambda elapsed: _log_status(server, elapsed),
            status_every_s=status_every,
            stop=lambda: stopping,
        )
    except KeyboardInterrupt:
        return sum(server.served.values())
    finally:
        signal.signal(signal.SIGTERM, previous)
        sink.close()
        if follower is not None:
            follower.close()


def _apply_deployments(server: ModelServer, follower: ControlFollower | None) -> None:
    """Apply the Deployment events that arrived; a bad or unloadable one is logged and
    skipped, since it must not stop serving."""
    if follower is None:
        return
    for d in follower.poll():
        try:
            server.ensure(d.weights)
            server.apply(d)
        except Exception as exc:  # a bad or unloadable deployment must not stop serving
            log.error("deployment %s not applied: %s", d.decision_id, exc)
            continue
        log.info("weights now %s (%s)", d.weights, d.reason or d.decision_id)


def _log_status(server: ModelServer, elapsed: float) -> None:
    """One status line: weights, requests served and failed per version, labels pending."""
    log.info(
        "serve-sim %s: %.0fs, weights %s, served %s, errors %s, labels pending %d",
        server.model,
        elapsed,
        server.weights,
        server.served,
        server.errors,
        server.emitter.pending if server.emitter is not None else 0,
        extra={"served": dict(server.served), "weights": dict(server.weights)},
    )
