"""Artifact retention: keep the files of each model's best N runs (by its primary metric), delete
the rest's, and record that on the run; every run's metadata stays.

The choice is a pure function (``plan_retention``); ``collect_artifacts`` fetches, plans,
deletes and records. Never deleted: the artifacts of a run behind a version in staging, canary
or production or one with an alias, of a run still running, or anything outside ``root`` (the
retrain work directory), whatever a run's tags claim.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from driftd.registry.errors import NotFound
from driftd.registry.records import RunInfo
from driftd.registry.rows import alias_map, find_model
from driftd.registry.runs import Runs
from driftd.registry.stages import _previous_holder as previous_holder

PROTECTED_STAGES = frozenset({"staging", "canary", "production"})
DELETED = "deleted"  # the ``artifacts`` tag of a run whose artifacts retention removed


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    """Which runs keep their artifacts (``keep``: best first, then protected) and which lose
    them (``drop``), with the reason each protected run is kept."""

    keep: list[str]
    drop: list[str]
    protected: dict[str, str] = field(default_factory=dict)


def is_protected(
    versions: Sequence[Mapping[str, Any]], rollback_to: frozenset[int] = frozenset()
) -> str | None:
    """Why a run's versions forbid deleting its artifacts (a serving stage, an alias, the
    version a rollback of the champion would return to), or None."""
    for v in versions:
        if v["version"] in rollback_to:
            return f"models:/{v['model']}/{v['version']} is the champion's rollback target"
        if v["stage"] in PROTECTED_STAGES:
            return f"models:/{v['model']}/{v['version']} is in {v['stage']}"
        if v["aliases"]:
            return f"models:/{v['model']}/{v['version']} has alias {', '.join(v['aliases'])}"
    return None


def _score(run: RunInfo, metric: str) -> float | None:
    value = run.metrics.get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def plan_retention(
    runs: Sequence[RunInfo],
    versions: Mapping[str, Sequence[Mapping[str, Any]]],
    keep: int,
    metric: str,
    higher_is_better: bool,
    rollback_to: frozenset[int] = frozenset(),
) -> RetentionPlan:
    """The best ``keep`` finished runs by ``metric`` keep their artifacts, and so does every
    protected run; running runs and those already cleaned are left out; the rest are dropped
    (failed runs, runs without the metric, and those ranked below ``keep``)."""
    live = [r for r in runs if r.status != "running" and r.tags.get("artifacts") != DELETED]
    protected = {
        r.id: why for r in live if (why := is_protected(versions.get(r.id, []), rollback_to))
    }
    scored = [
        (s, r) for r in live if r.status == "finished" and (s := _score(r, metric)) is not None
    ]
    scored.sort(key=lambda p: (-p[0] if higher_is_better else p[0], -p[1].started_at, p[1].id))
    best = [r.id for _, r in scored[: max(keep, 0)]]
    kept = best + [i for i in protected if i not in best]
    drop = [r.id for r in live if r.id not in kept]
    return RetentionPlan(kept, drop, protected)


def local_path(uri: str) -> Path | None:
    """The local path of a ``file://`` URI or plain absolute path; None for other schemes."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if not parsed.scheme and uri.startswith("/"):
        return Path(uri)
    return None


def artifact_paths(run: RunInfo, versions: Sequence[Mapping[str, Any]]) -> list[Path]:
    """Where a run's artifacts are: the ``artifact_dir`` it recorded (its whole output, trial
    artifacts included), else the local files of the versions registered from it."""
    uris = [str(run.tags["artifact_dir"])] if run.tags.get("artifact_dir") else []
    uris = uris or [str(v["artifact_uri"]) for v in versions]
    return [p for p in (local_path(u) for u in uris) if p is not None]


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one collection did (or, with ``dry_run``, would do) for a model."""

    model: str
    metric: str
    keep: int
    dry_run: bool
    kept: list[str]
    protected: dict[str, str]
    deleted: dict[str, list[str]]  # run id -> paths removed (or to remove)
    skipped: dict[str, str]  # run id -> why nothing was removed

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return {
            "model": self.model,
            "metric": self.metric,
            "keep": self.keep,
            "dry_run": self.dry_run,
            "kept": self.kept,
            "protected": self.protected,
            "deleted": self.deleted,
            "skipped": self.skipped,
        }


def rollback_targets(registry: Runs, model: str) -> frozenset[int]:
    """The version a rollback of ``model``'s champion would return to (as ``rollback`` picks
    it), whose artifact must therefore stay; empty when there is none."""
    with registry.engine.connect() as conn:
        try:
            model_id = find_model(conn, model)
        except NotFound:
            return frozenset()
        champion = alias_map(conn, model_id).get("champion")
        if champion is None:
            return frozenset()
        previous = previous_holder(conn, model_id, "champion", champion)
    return frozenset() if previous is None else frozenset({previous})


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _deletable(path: Path, root: Path, guarded: Sequence[Path]) -> str | None:
    """Why ``path`` must not be deleted, or None."""
    p = path.resolve()
    if not p.is_relative_to(root.resolve()) or p == root.resolve():
        return f"{path} is outside the retrain work directory {root}"
    if any(g.is_relative_to(p) for g in guarded):
        return f"{path} holds the artifact of a protected version"
    return None


def collect_artifacts(
    registry: Runs,
    model: str,
    keep: int,
    metric: str,
    higher_is_better: bool,
    root: Path,
    actor: str,
    *,
    dry_run: bool = False,
    remove: Callable[[Path], None] = _remove,
) -> RetentionReport:
    """Delete the artifacts of ``model``'s runs beyond the best ``keep`` by ``metric`` (only
    under ``root``), tagging each such run ``artifacts = "deleted"`` with the time and paths."""
    runs = registry.list_runs(model=model)
    versions = registry.run_versions([r.id for r in runs])
    back = rollback_targets(registry, model)
    plan = plan_retention(runs, versions, keep, metric, higher_is_better, back)
    guarded = [
        p.resolve()
        for vs in versions.values()
        if is_protected(vs, back)
        for p in (local_path(str(v["artifact_uri"])) for v in vs)
        if p is not None
    ]
    by_id = {r.id: r for r in runs}
    deleted: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    for run_id in plan.drop:
        paths = artifact_paths(by_id[run_id], versions.get(run_id, []))
        refusals = [why for p in paths if (why := _deletable(p, root, guarded))]
        if not paths or refusals:
            skipped[run_id] = "; ".join(refusals) or "no local artifact recorded"
            continue
        deleted[run_id] = [str(p) for p in paths]
        if dry_run:
            continue
        for p in paths:
            remove(p)
        registry.set_run_tags(
            run_id,
            {
                "artifacts": DELETED,
                "artifacts_deleted_at": registry.clock(),
                "artifacts_deleted": deleted[run_id],
            },
            actor,
            reason=f"not among the best {keep} runs of {model} by {metric}",
        )
    return RetentionReport(
        model, metric, keep, dry_run, plan.keep, plan.protected, deleted, skipped
    )
