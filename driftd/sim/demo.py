"""``driftd demo``: the whole loop on the embedded default (files, SQLite, CPU), in event time.

A simulated model server answers 100 requests per second of event time; its concept drifts at
a known time. The real daemon (file source, pipeline, detectors, labeled store, retrain
triggers, rollout controller, metrics) consumes the stream; the retrain job runs in the real
subprocess worker. Expected course: drift → alarm → retrain → the challenger beats the
champion with confidence intervals → canary → promoted; then a hand-registered challenger with
a latency regression → canary → rolled back automatically. The inputs shift too: the window
drift check's alarms open incidents, and the first one's HTML report is written to the output
directory. Event time runs as fast as the machine allows, so an hour of traffic takes well
under a minute.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import MutableSequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import generate_latest

from driftd.config import Settings, load_settings
from driftd.contracts.monitor import DriftDetected
from driftd.daemon.app import App, build
from driftd.daemon.incidents import report_page
from driftd.incidents.store import IncidentStore
from driftd.registry.configure import open_registry
from driftd.registry.registry import Registry
from driftd.retrain.jobs import JobQueue
from driftd.retrain.service import retrain_model
from driftd.retrain.store import LabeledRows, LabeledStore
from driftd.retrain.triggers import make_worker, retrain_sections
from driftd.retrain.worker import Worker
from driftd.sim.server import LabelEmitter, ModelServer, Regression
from driftd.sim.sinks import JsonlSink
from driftd.sim.synth import CATEGORIES
from driftd.sim.world import World

log = logging.getLogger("driftd.demo")
MODEL = "fraud"
T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC: event time starts here
DRIFT_AFTER_S = 600.0
N_FEATURES = 8

CONFIG = """# Written by `driftd demo`.
[pipeline]
name = "demo"
data_dir = "{state}"
checkpoint_every_s = 5
# Each checkpoint reports the partition's summaries to the leader: the demo's event time runs
# far ahead of the wall clock, so it reports by events (every ~25 s of traffic), not seconds.
checkpoint_every_events = 5000
poll_timeout_s = 0.01

[source]
kind = "file"
paths = ["{events}"]
follow = true

[checkpoint]
url = "sqlite:///{state}/driftd.db"

[metrics]
enabled = {metrics}
port = {port}

[retrain]
store_dir = "{state}/labeled"
work_dir = "{state}/retrain"
worker = false
lease_s = 60
store_flush_rows = 2000

[models.fraud]
task = "binary"
max_label_delay_s = 120
window_s = 60
features = {{ {features} }}

[[models.fraud.detectors]]
detector = "HDDM_A"
stream = "error"

# Every feature's distribution, window by window, against the first window: a drift alarm
# opens an incident that says which features moved and by how much.
[[models.fraud.checks]]
check = "drift"
window_s = 300

[models.fraud.retrain]
params = {{ epochs = 8, batch_size = 1024, hidden = [64, 64] }}
rows_after_alarm = 8000
min_new_rows = 2000
cooldown_s = 1e9
device = "cpu"
deterministic = true
timeout_s = 600
[models.fraud.retrain.gate]
min_samples = 300
n_boot = 1000

[models.fraud.rollout]
steps = [0.25, 0.5]
step_min_s = 120
[models.fraud.rollout.slo]
min_samples = 800
min_labeled = 200
max_duration_s = 3600
"""


@dataclass
class Timeline:
    """What happened, in event time (seconds after the stream started)."""

    entries: list[tuple[float, str]] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)

    def add(self, t: float, text: str, mark: str | None = None) -> None:
        self.entries.append((t - T0, text))
        if mark is not None and mark not in self.marks:
            self.marks[mark] = t - T0
        log.info(text, extra={"event_s": round(t - T0, 1)})


def write_config(out: Path, metrics_port: int | None) -> Path:
    """The demo's configuration file."""
    numeric = [f'f{j} = "numeric"' for j in range(N_FEATURES)]
    cats = [f'{c} = "categorical"' for c in CATEGORIES]
    state = (out / "state").resolve()
    text = CONFIG.format(
        state=state,
        events=(out / "events.jsonl").resolve(),
        metrics="true" if metrics_port is not None else "false",
        port=9464 if metrics_port is None else metrics_port,
        features=", ".join([*numeric, *cats]),
    )
    path = out / "driftd.toml"
    path.write_text(text)
    return path


def seed_champion(settings: Settings, registry: Registry, world: World, rate: float) -> int:
    """Train v1 on pre-drift traffic (the real retrain path) and make it champion."""

    n = 12_000
    t = T0 - n / rate + np.arange(n) / rate
    x = world.features(n, t)
    y = world.labels(x, t).astype(np.float64)
    k = world.n_features
    vocabs = [list(v) for v in world.categories.values()]
    store = LabeledStore(settings.retrain.store_dir)
    store.append(
        MODEL,
        LabeledRows(
            ids=[f"seed-{i}" for i in range(n)], ts=t, label_ts=t + 20,
            version=np.zeros(n, np.int32), version_names=["0"], numeric=x[:, :k],
            numeric_names=world.numeric_names,
            categorical=x[:, k:].astype(np.int32), categorical_names=list(world.categories),
            categorical_vocabs=vocabs, prediction=np.zeros(n), score=np.full(n, np.nan), label=y,
        ),
    )  # fmt: skip
    store.flush()
    outcome = retrain_model(
        MODEL, settings.models[MODEL], settings.retrain, registry,
        storage_url=settings.registry_url, trigger={"kind": "seed"},
    )  # fmt: skip
    registry.promote(MODEL, outcome.version, "production", "demo-ops", "the first champion")
    registry.set_traffic(MODEL, {outcome.version: 1.0}, "demo-ops", "all traffic", "seed")
    return int(outcome.version)


def run_demo(out: Path, seed: int = 7, rate: float = 100.0, metrics_port: int | None = None,
             max_event_s: float = 6 * 3600) -> dict[str, Any]:  # fmt: skip
    """Run the loop; return the timeline and the closed loop's speed (event seconds)."""

    out.mkdir(parents=True, exist_ok=True)
    config = write_config(out, metrics_port)
    settings = load_settings(config)
    # One registry for the whole demo: the daemon built below takes it over (and closes it).
    registry = open_registry(settings.registry, settings.registry_url, apply_gates=True)
    world = World(N_FEATURES, seed, drift_at=T0 + DRIFT_AFTER_S)
    tl = Timeline()
    wall0 = time.monotonic()
    v1 = seed_champion(settings, registry, world, rate)
    tl.add(T0, f"v{v1} trained on pre-drift traffic and made champion", "champion")
    tl.add(T0 + DRIFT_AFTER_S, "the concept drifts (ground truth)", "drift")

    app = _start_daemon(settings, registry, config, metrics_port, tl)
    worker = make_worker(settings.retrain, retrain_sections(settings.models), registry)
    server = ModelServer(world, registry, MODEL, seed=seed, emitter=LabelEmitter(20.0, 1.0, seed),
                         base_latency_ms=40.0, base_error_rate=0.005)  # fmt: skip
    server.load(v1)
    server.apply({str(v1): 1.0})
    sink = JsonlSink(out / "events.jsonl")
    try:
        ok = _simulate(app, registry, worker, server, sink, v1, tl, rate, max_event_s)
        report = write_report(registry, settings, out)
        ends = {
            "champion": registry.resolve(f"{MODEL}@champion").version,
            "lineage": registry.lineage(f"{MODEL}@champion", depth=1),
            "incidents": _incident_lines(registry, settings),
            "report": None if report is None else str(report),
            "ok": ok and report is not None,
        }
    finally:
        _stop_daemon(app, sink, out)
    result = {
        "timeline": [
            {"event_s": round(s, 1), "what": w} for s, w in sorted(tl.entries, key=lambda e: e[0])
        ],
        "closed_loop_s": _speeds(tl.marks),
        "wall_s": round(time.monotonic() - wall0, 1),
        **ends,
    }
    (out / "demo.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def _incident_lines(registry: Registry, settings: Settings) -> list[str]:
    """One line per incident of the run, the first opened first."""
    found = sorted(
        IncidentStore.configured(registry, settings.incidents).list(model=MODEL),
        key=lambda i: i.opened_ts,
    )
    return [
        f"{i.id} {i.state}: {i.stream} ({i.alarms} alarms from {i.opened_ts - T0:.0f} s)"
        for i in found
    ]


def write_report(registry: Registry, settings: Settings, out: Path) -> Path | None:
    """The HTML report of the run's first drift incident that has an explanation (the window
    check's), in ``out``; None when there is none."""
    store = IncidentStore.configured(registry, settings.incidents)
    for inc in sorted(store.list(model=MODEL), key=lambda i: (i.opened_ts, i.id)):
        stored = store.evidence(inc.id)
        if stored and stored.get("shifts"):
            page = report_page(store, inc.id, LabeledStore(settings.retrain.store_dir))
            path = out / f"incident-{inc.id}.html"
            path.write_text(page, encoding="utf-8")
            return path
    return None


def _start_daemon(
    settings: Settings, registry: Registry, config: Path, metrics_port: int | None, tl: Timeline
) -> App:
    """The real daemon on the demo's registry, its file source assigned; metrics served when
    a port is given."""

    app = build(
        settings, serve_metrics=metrics_port is not None, config_path=config,
        model_registry=registry,
    )  # fmt: skip
    app.runner.assign([0])
    if app.server is not None:
        port = app.server[0].server_port
        tl.add(T0, f"metrics served at http://127.0.0.1:{port}/metrics while the demo runs")
    return app


def _simulate(app: App, registry: Registry, worker: Worker, server: ModelServer, sink: JsonlSink,
              v1: int, tl: Timeline, rate: float, max_event_s: float) -> bool:  # fmt: skip
    """Serve event time second by second; every 5 s let the daemon catch up, run queued
    retrain jobs and follow the registry, until the regressed challenger is rolled back
    (True) or ``max_event_s`` passes (False)."""

    stages: dict[int, str] = {v1: "production"}
    regressed: int | None = None
    t = T0
    while t < T0 + max_event_s:
        t += 1.0
        sink.write(server.serve(int(rate), t), server.emitter.due(t) if server.emitter else [])
        if int(t - T0) % 5:
            continue
        while app.runner.step():
            pass
        _note_alarms(app.runner.alarms, tl)
        if JobQueue(registry.engine).list(model=MODEL, state="queued"):
            tl.add(t, "retrain job queued by the alarm; the worker runs it", "queued")
            job = worker.run_once()
            if job is not None and job.result:
                tl.add(t, _trained(job.result), "challenger")
        _sync(registry, server, stages, tl, t)
        champion = registry.resolve(f"{MODEL}@champion").version
        if champion != v1 and regressed is None:
            regressed = _regressed_challenger(registry, server, champion, tl, t)
        if regressed is not None and stages.get(regressed) == "rolled_back":
            return True
    return False


def _stop_daemon(app: App, sink: JsonlSink, out: Path) -> None:
    """Close the event file, checkpoint, keep a metrics snapshot, and release the daemon."""

    sink.close()
    if app.pipeline.partitions:
        app.runner.checkpoint()
    (out / "metrics.prom").write_bytes(generate_latest(app.registry))
    app.close()


def _note_alarms(alarms: MutableSequence[DriftDetected], tl: Timeline) -> None:
    """Drift alarms into the timeline (warnings are left out), then forget them."""
    for a in alarms:
        if a.kind == "drift":
            tl.add(a.ts, f"drift alarm: {a.detector} on {a.stream} of v{a.version}", "alarm")
    alarms.clear()


def _trained(result: dict[str, Any]) -> str:
    """One line on a finished retrain: the candidate against the champion, with the CI."""
    p = result["evaluation"].get("primary", {})
    verdict = "challenger" if result["promoted"] else "refused"
    return (
        f"v{result['version']} trained: AUC {p.get('candidate', 0):.3f} vs champion "
        f"{p.get('champion', 0):.3f}, difference 95% CI [{p.get('ci_low', 0):+.3f}, "
        f"{p.get('ci_high', 0):+.3f}] → {verdict}"
    )


def _sync(
    registry: Registry, server: ModelServer, stages: dict[int, str], tl: Timeline, t: float
) -> None:
    """Follow the published traffic weights; note every stage change."""
    weights = registry.traffic(MODEL)
    if weights and {str(v): w for v, w in weights.items()} != server.weights:
        server.ensure(weights)
        server.apply({str(v): w for v, w in weights.items()})
        split = ", ".join(f"v{v} {w:.0%}" for v, w in sorted(weights.items()))
        tl.add(t, f"traffic: {split}")
    for v in registry.list_versions(MODEL):
        if stages.get(v.version) != v.stage:
            stages[v.version] = v.stage
            mark = {"canary": "canary", "production": "promoted", "rolled_back": "rolled_back"}
            tl.add(t, f"v{v.version} → {v.stage}", mark.get(v.stage))


def _regressed_challenger(
    registry: Registry, server: ModelServer, champion: int, tl: Timeline, t: float
) -> int:
    """Register the champion's build again by hand, with a latency regression injected."""

    v = registry.resolve(f"{MODEL}@champion")
    new = registry.register_version(
        MODEL, v.artifact_uri, v.artifact_sha256, v.artifact_size, "demo-ops",
        description="hand-built: adds a slow feature lookup", parent_version=champion,
        stage="staging", aliases=["challenger"],
    )  # fmt: skip
    server.load(new.version)
    server.regress(new.version, Regression(latency_factor=1.6))
    tl.add(t, f"v{new.version} registered by hand as challenger (60% slower: injected)")
    return int(new.version)


def _speeds(marks: dict[str, float]) -> dict[str, float]:
    """Event seconds from the drift point to each milestone of the loop."""
    d = marks.get("drift")
    if d is None:
        return {}
    keys = ("alarm", "challenger", "canary", "promoted")
    return {f"drift_to_{k}": round(marks[k] - d, 1) for k in keys if k in marks}
