"""Artifact retention as a model's retrain settings configure it: the best
``keep_best_artifacts`` runs by the gate's primary metric keep their files (see
``driftd.registry.run_retention``), under the retrain work directory of that model."""

from __future__ import annotations

from driftd.config import ModelSettings
from driftd.config.retrain import ModelRetrainSettings, RetrainSettings
from driftd.registry.run_retention import RetentionReport, collect_artifacts
from driftd.registry.runs import Runs
from driftd.retrain.candidate import DEFAULT_PRIMARY
from driftd.retrain.evaluate import METRICS


def primary_metric(ms: ModelSettings) -> tuple[str, bool]:
    """The model's primary metric (the gate's, else the task's default) and whether higher
    is better."""
    rs = ms.retrain or ModelRetrainSettings()
    name = rs.gate.primary or DEFAULT_PRIMARY[ms.task]
    return name, METRICS[name].higher_is_better


def keep_best(
    registry: Runs,
    model: str,
    ms: ModelSettings,
    paths: RetrainSettings,
    actor: str,
    *,
    dry_run: bool = False,
) -> RetentionReport | None:
    """Apply ``model``'s artifact retention; None when it keeps every artifact (0)."""
    rs = ms.retrain or ModelRetrainSettings()
    if rs.keep_best_artifacts == 0:
        return None
    metric, higher = primary_metric(ms)
    root = paths.work_dir / model
    return collect_artifacts(
        registry, model, rs.keep_best_artifacts, metric, higher, root, actor, dry_run=dry_run
    )
