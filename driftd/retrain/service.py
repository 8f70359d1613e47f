"""One retrain, end to end: snapshot → run → train (or tune) → evaluate against the champion on
the same holdout → register the candidate with its evaluation.

Every step is recorded in the registry: the snapshot as a Dataset (its content hash), the run
with params, seeds, code version, environment and trigger, and the candidate version with the
decision, the numbers, the test and the sample size. A passing candidate gets stage
``staging`` and alias ``challenger``; a refused one stays in ``development`` with the reasons.
``run_job`` is the same thing as a queued job's entry point (``driftd.retrain.jobrun``).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftd.config import ModelSettings, load_settings
from driftd.config.retrain import ModelRetrainSettings, RetrainSettings
from driftd.lineage import RetrainLineage, lineage_from_settings
from driftd.logs import configure
from driftd.registry import NotFound, Registry, VersionInfo
from driftd.registry.configure import open_registry
from driftd.registry.metric_series import epoch_series
from driftd.retrain.abandoned import ACTOR, env_attempt_tags
from driftd.retrain.candidate import evaluate_candidate
from driftd.retrain.provenance import code_version, entry_point_dir, environment
from driftd.retrain.retention import keep_best
from driftd.retrain.snapshot import (
    LastN,
    SinceAlarm,
    Snapshot,
    SnapshotSpec,
    TimeRange,
    Window,
    make_snapshot,
)
from driftd.retrain.store import LabeledStore
from driftd.retrain.trainer import (
    ReportFn,
    TaskName,
    TrainRequest,
    TrainResult,
    load_entry_point,
)

log = logging.getLogger("driftd.retrain")


@dataclass(frozen=True)
class Progress:
    """Callbacks for a terminal: a phase line, epoch reports and tuning trials."""

    phase: Callable[[str], None] = lambda _msg: None
    epoch: ReportFn = lambda _epoch, _metrics: None
    trial: Callable[[Any], None] = lambda _trial: None


@dataclass(frozen=True)
class RetrainOutcome:
    """What one retrain produced."""

    model: str
    run_id: str
    dataset_sha256: str
    version: int
    promoted: bool
    evaluation: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the job result)."""
        return {
            "model": self.model,
            "run_id": self.run_id,
            "dataset_sha256": self.dataset_sha256,
            "version": self.version,
            "promoted": self.promoted,
            "evaluation": self.evaluation,
            "metrics": self.metrics,
        }


def window_of(rs: ModelRetrainSettings, end: float | None = None) -> Window:
    """The configured window: the last N rows, or the last S seconds before ``end``."""
    if rs.window_last_s is not None:
        stop = time.time() if end is None else end
        return TimeRange(stop - rs.window_last_s, stop)
    return LastN(int(rs.window_last_rows or 200_000), end)


def _champion(registry: Registry, model: str) -> VersionInfo | None:
    try:
        return registry.resolve(f"{model}@champion")
    except NotFound:
        return None


def _train(
    model: str,
    rs: ModelRetrainSettings,
    request: TrainRequest,
    champion: VersionInfo | None,
    registry: Registry,
    storage_url: str,
    trials: int,
    progress: Progress,
) -> tuple[TrainResult, dict[str, Any]]:
    """Train once, or tune with Optuna (studies stored at ``storage_url``) and return the best
    trial's result and params."""
    trainer = load_entry_point(rs.trainer)
    if trials <= 0:
        return trainer(request), dict(request.params)
    from driftd.retrain.tune import DEFAULT_SPACE, parse_space, tune

    warm = None
    if rs.tuning.warm_start and champion is not None and champion.run_id is not None:
        warm = registry.get_run(champion.run_id).params
    space = parse_space(rs.tuning.space) if rs.tuning.space else DEFAULT_SPACE
    result = tune(
        trainer,
        lambda: request,
        space,
        n_trials=trials,
        timeout_s=rs.tuning.timeout_s,
        storage_url=storage_url,
        study_name=f"{model}-{request.snapshot_sha256[:12]}-{request.seed}",
        seed=request.seed,
        metric=rs.tuning.metric,
        pruner=rs.tuning.pruner,
        warm_start=warm,
        coarse_fraction=rs.tuning.coarse_fraction,
        progress=progress.trial,
    )
    return result.best_result, dict(result.best_params)


def _window(
    rs: ModelRetrainSettings, window: Window | None, trigger: Mapping[str, Any] | None
) -> Window:
    """The window asked for, else only what came after the alarm (``rows_after_alarm``), else
    the configured one."""
    if window is None and rs.rows_after_alarm > 0 and trigger and trigger.get("kind") == "alarm":
        return SinceAlarm(float(trigger["key"]["ts"]))
    return window or window_of(rs)


def _snapshot(
    model: str, rs: ModelRetrainSettings, store: LabeledStore, window: Window, out: Path
) -> Snapshot:
    """Cut the snapshot of ``window`` into ``out``, split as configured."""
    train_f, val_f, hold_f = rs.split
    return make_snapshot(store, SnapshotSpec(model, window, train_f, val_f, hold_f), out)


def _register_dataset(registry: Registry, snap: Snapshot) -> int:
    """Record the snapshot as a registry Dataset (its content hash, window, sources)."""
    record = snap.dataset_record()
    return registry.register_dataset(
        record["sha256"],
        record["row_count"],
        record["uri"],
        ACTOR,
        window=(record["window_start"], record["window_end"]),
        source_offsets=dict(record["source_offsets"]),
        schema={"columns": record["schema"]},
    )


def _start_run(
    model: str,
    ms: ModelSettings,
    rs: ModelRetrainSettings,
    registry: Registry,
    snap: Snapshot,
    dataset_id: int,
    n_trials: int,
    trigger: Mapping[str, Any] | None,
    job_tags: Mapping[str, Any] | None,
    artifact_dir: Path,
) -> str:
    """Open the registry run: params, seed, code version, environment, trigger and tags (the
    ``artifact_dir`` its files go to, which artifact retention may delete later)."""
    return registry.start_run(
        model,
        ACTOR,
        params=dict(rs.params),
        seeds={"seed": rs.seed},
        code=code_version(entry_point_dir(rs.trainer)),
        environment=environment(),
        tags={
            "entry_point": rs.trainer,
            "task": ms.task,
            "deterministic": rs.deterministic,
            "device": rs.device,
            "trials": n_trials,
            "snapshot_uri": snap.dataset_record()["uri"],
            "artifact_dir": artifact_dir.resolve().as_uri(),
            **dict(job_tags or {}),
        },
        dataset_id=dataset_id,
        trigger=dict(trigger) if trigger is not None else {"kind": "manual"},
    )


def _register_candidate(
    model: str,
    ms: ModelSettings,
    registry: Registry,
    result: TrainResult,
    run_id: str,
    champion: VersionInfo | None,
    evaluation: dict[str, Any],
) -> VersionInfo:
    """Register the candidate: ``staging`` + ``challenger`` when it passed, else development."""
    promoted = bool(evaluation["promote"])
    return registry.register_version(
        model,
        result.artifact.resolve().as_uri(),
        result.artifact_sha256,
        result.artifact.stat().st_size,
        ACTOR,
        framework="torch",
        signature={"features": dict(ms.features), "task": ms.task},
        run_id=run_id,
        parent_version=champion.version if champion is not None else None,
        evaluation=evaluation,
        stage="staging" if promoted else "development",
        aliases=["challenger"] if promoted else [],
        reason="; ".join(evaluation.get("reasons", [])) or "passed the evaluation gate",
    )


def _request(
    task: TaskName, rs: ModelRetrainSettings, snap: Snapshot, out_dir: Path, report: ReportFn
) -> TrainRequest:
    """What the trainer gets: the snapshot, the configured params, seed and device."""
    return TrainRequest(
        snapshot_dir=snap.path,
        snapshot_sha256=snap.sha256,
        task=task,
        params=dict(rs.params),
        seed=rs.seed,
        device=rs.device,
        deterministic=rs.deterministic,
        out_dir=out_dir,
        report=report,
    )


def _finish_run(
    registry: Registry, run_id: str, result: TrainResult, params: dict[str, Any]
) -> dict[str, float]:
    """Close the run as finished with its metrics, final params, artifact and per-epoch metric
    series (steps); the metrics."""
    metrics = {k: float(v) for k, v in result.metrics.items()}
    registry.finish_run(
        run_id,
        ACTOR,
        metrics=metrics,
        params=params,
        steps=epoch_series(result.history),
        tags={
            "artifact_sha256": result.artifact_sha256,
            "epochs_run": result.epochs_run,
            "device_used": result.device,
        },
    )
    return metrics


def _retain(registry: Registry, model: str, ms: ModelSettings, paths: RetrainSettings) -> None:
    """Apply artifact retention after a retrain; a failure is logged, never fails the retrain
    (its version is registered already) — ``driftd runs gc`` retries it."""
    try:
        report = keep_best(registry, model, ms, paths, ACTOR)
    except Exception:
        log.warning("artifact retention failed", extra={"model": model}, exc_info=True)
        return
    if report is not None and report.deleted:
        log.info(
            "deleted artifacts of runs beyond the best",
            extra={"model": model, "runs": sorted(report.deleted), "keep": report.keep},
        )


def retrain_model(
    model: str,
    ms: ModelSettings,
    paths: RetrainSettings,
    registry: Registry,
    *,
    storage_url: str,
    trigger: Mapping[str, Any] | None = None,
    window: Window | None = None,
    trials: int | None = None,
    progress: Progress | None = None,
    job_tags: Mapping[str, Any] | None = None,
    lineage: RetrainLineage | None = None,
) -> RetrainOutcome:
    """Retrain ``model`` (configured by ``ms``) now, in this process, and register the
    candidate. ``paths`` says where labeled rows and work files live, ``storage_url`` where
    tuning studies go (the registry database); ``job_tags`` name the queued job attempt this
    is (see ``driftd.retrain.abandoned``); ``lineage`` gets the run's OpenLineage events."""
    rs = ms.retrain or ModelRetrainSettings()
    prog = progress or Progress()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    work = paths.work_dir / model / stamp
    store = LabeledStore(paths.store_dir)

    prog.phase("snapshot")
    snap = _snapshot(model, rs, store, _window(rs, window, trigger), work / "snapshot")
    dataset_id = _register_dataset(registry, snap)
    champion = _champion(registry, model)
    request = _request(ms.task, rs, snap, work / "artifact", prog.epoch)
    n_trials = rs.tuning.trials if trials is None else trials
    run_id = _start_run(
        model, ms, rs, registry, snap, dataset_id, n_trials, trigger, job_tags, request.out_dir
    )
    ol = lineage or RetrainLineage(None)
    ol.start(model, run_id, snap)
    try:
        prog.phase("train" if n_trials <= 0 else f"tune ({n_trials} trials)")
        result, params = _train(model, rs, request, champion, registry, storage_url, n_trials, prog)
        prog.phase("evaluate")
        evaluation = evaluate_candidate(snap, ms.task, rs, result, champion, registry.artifacts)
    except BaseException as exc:
        registry.finish_run(run_id, ACTOR, status="failed")
        ol.fail(model, run_id, snap, exc)
        raise
    version = _register_candidate(model, ms, registry, result, run_id, champion, evaluation)
    promoted = bool(evaluation["promote"])
    metrics = _finish_run(registry, run_id, result, params)
    ol.complete(model, run_id, snap, version, promoted)
    log.info(
        "retrain finished",
        extra={"model": model, "version": version.version, "promoted": promoted, "run": run_id},
    )
    _retain(registry, model, ms, paths)
    return RetrainOutcome(
        model, run_id, snap.sha256, version.version, promoted, evaluation, metrics
    )


def run_job(config: str, model: str, trigger: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A queued job's entry point (in a child process): retrain ``model`` per ``config``; its
    run is tagged with the job attempt the executor names in the environment."""
    settings = load_settings(config)
    configure(settings.log)
    registry = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    try:
        outcome = retrain_model(
            model,
            settings.models[model],
            settings.retrain,
            registry,
            storage_url=settings.registry_url,
            trigger=trigger,
            job_tags=env_attempt_tags(os.environ),
            lineage=lineage_from_settings(settings.lineage),
        )
        return outcome.to_dict()
    finally:
        registry.engine.dispose()
