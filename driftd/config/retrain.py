"""Retraining settings: ``[retrain]`` (store, work directory, worker) and, per model,
``[models.<name>.retrain]`` (trainer, window, triggers, executor, tuning, promotion gate).

Example::

    [models.fraud.retrain]
    trainer = "driftd.retrain.tabular:train"
    params = { epochs = 20 }
    window_last_rows = 200000
    on = ["drift"]
    min_new_rows = 5000
    cooldown_s = 3600
    schedule = "0 3 * * *"          # also retrain nightly (cron, UTC)
    [models.fraud.retrain.tuning]
    trials = 20
    [models.fraud.retrain.gate]
    primary = "roc_auc"
    min_gain = 0.002
    guards = { log_loss = 0.01 }
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from driftd.config.sections import Section, validate_cron

_METRICS = ("accuracy", "roc_auc", "log_loss", "brier", "rmse", "mae")
Metric = Literal["accuracy", "roc_auc", "log_loss", "brier", "rmse", "mae"]


class TuningSettings(Section):
    """Optuna: a budget in trials and wall time; 0 trials trains once with ``params``."""

    trials: Annotated[int, Field(ge=0, le=10_000)] = 0
    timeout_s: Annotated[float, Field(gt=0)] = 3600.0
    pruner: Literal["hyperband", "successive_halving", "none"] = "hyperband"
    coarse_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.0
    warm_start: bool = True  # enqueue the champion's parameters as the first trial
    metric: str = "loss"  # the validation metric minimised
    space: dict[str, dict[str, Any]] = {}  # empty: the built-in trainer's default space


class EvaluationGateSettings(Section):
    """Champion/challenger promotion gate (see ``driftd.retrain.gate``)."""

    primary: Metric | None = None  # None: roc_auc (binary), accuracy (multiclass), rmse
    min_gain: Annotated[float, Field(ge=0)] = 0.0
    margin: Annotated[float, Field(ge=0)] = 0.0
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    guards: dict[Metric, Annotated[float, Field(ge=0)] | None] = {}
    min_samples: Annotated[int, Field(ge=2)] = 200
    n_boot: Annotated[int, Field(ge=100, le=100_000)] = 2000


class ModelRetrainSettings(Section):
    """How one model is retrained, when, where, and what a candidate must show."""

    enabled: bool = True
    trainer: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")] = (
        "driftd.retrain.tabular:train"
    )
    # Scores an artifact on a split: (artifact path, TrainingArrays) -> predictions.
    predictor: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")] = (
        "driftd.retrain.tabular:predict"
    )
    params: dict[str, Any] = {}
    seed: int = 0
    deterministic: bool = False
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")] = "auto"
    # The window: the last N rows (default), or the last S seconds of event time.
    window_last_rows: Annotated[int, Field(ge=10)] | None = 200_000
    window_last_s: Annotated[float, Field(gt=0)] | None = None
    # After an alarm: train on rows from the alarm on, once this many labeled rows arrived
    # (0: train at once on the window above).
    rows_after_alarm: Annotated[int, Field(ge=0)] = 0
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    # Triggers.
    on: list[Literal["drift", "warning"]] = ["drift"]
    detectors: list[str] = []  # empty: any detector
    streams: list[str] = []  # empty: any stream
    min_new_rows: Annotated[int, Field(ge=0)] = 1000
    cooldown_s: Annotated[float, Field(ge=0)] = 3600.0
    schedule: str | None = None  # cron (UTC), e.g. "0 3 * * *"
    # Jobs.
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    backoff_s: Annotated[float, Field(gt=0)] = 60.0
    max_backoff_s: Annotated[float, Field(gt=0)] = 3600.0
    executor: Literal["subprocess", "torchrun"] = "subprocess"
    nproc: Annotated[int, Field(ge=1, le=64)] = 1
    timeout_s: Annotated[float, Field(gt=0)] = 3600.0
    memory_limit_mb: Annotated[int, Field(ge=64)] | None = None
    tuning: TuningSettings = TuningSettings()
    gate: EvaluationGateSettings = EvaluationGateSettings()
    # Artifact retention: after each retrain (and `driftd runs gc`) only the best N runs by
    # the gate's primary metric keep their artifact files; versions in staging, canary or
    # production and aliased ones keep theirs always; run metadata is never deleted.
    # 0 keeps every artifact (retention off).
    keep_best_artifacts: Annotated[int, Field(ge=0)] = 5

    @field_validator("split")
    @classmethod
    def _split(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(v) < 0 or abs(sum(v) - 1.0) > 1e-9 or v[0] == 0 or v[2] == 0:
            raise ValueError(
                "split is (train, validation, holdout) fractions ≥ 0 that sum to 1, with "
                f"train and holdout > 0; got {v}"
            )
        return v

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            validate_cron(v)
        return v

    @model_validator(mode="after")
    def _window(self) -> ModelRetrainSettings:
        if self.window_last_s is not None and self.window_last_rows is not None:
            object.__setattr__(self, "window_last_rows", None)  # seconds win when both given
        return self


class RetrainSettings(Section):
    """Where labeled rows, snapshots and artifacts live; whether the daemon runs a worker."""

    store_dir: Path = Path(".driftd/labeled")
    work_dir: Path = Path(".driftd/retrain")
    retention_days: Annotated[int, Field(ge=1)] | None = 30
    worker: bool = True
    lease_s: Annotated[float, Field(ge=2)] = 60.0
    store_flush_rows: Annotated[int, Field(ge=1)] = 65_536
