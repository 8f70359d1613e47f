"""Artifact retention: the best N runs of a model keep their files, so do versions that serve
(staging, canary, production), aliased ones and the champion's rollback target; the others'
files are deleted and the run is tagged, its metadata kept. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from pathlib import Path

from driftd.registry import Registry
from driftd.registry.run_retention import DELETED, collect_artifacts, plan_retention


def make_run(registry: Registry, root: Path, name: str, auc: float | None) -> tuple[str, Path]:
    """A finished run of ``m`` with an artifact directory under ``root`` (failed when no auc)."""
    out = root / name / "artifact"
    out.mkdir(parents=True)
    (out / "model.bin").write_bytes(name.encode())
    rid = registry.start_run("m", "t", tags={"artifact_dir": out.resolve().as_uri()})
    if auc is None:
        registry.finish_run(rid, "t", status="failed")
    else:
        registry.finish_run(rid, "t", metrics={"roc_auc": auc})
    return rid, out


def register(registry: Registry, rid: str, out: Path, stage: str = "development") -> int:
    data = (out / "model.bin").read_bytes()
    uri = (out / "model.bin").resolve().as_uri()
    v = registry.register_version(
        "m", uri, hashlib.sha256(data).hexdigest(), len(data), "t", run_id=rid, stage=stage
    )
    return v.version


def test_best_n_keep_their_artifacts_and_serving_versions_are_never_deleted(
    registry: Registry, tmp_path: Path
) -> None:
    root = tmp_path / "work" / "m"
    runs = {
        name: make_run(registry, root, name, auc)
        for name, auc in [
            ("top", 0.95), ("second", 0.9), ("serving", 0.6), ("aliased", 0.55),
            ("plain", 0.7), ("failed", None), ("low", 0.5),
        ]
    }  # fmt: skip
    serving = register(registry, *runs["serving"], stage="staging")
    registry.promote("m", serving, "production", "ops")
    aliased = register(registry, *runs["aliased"])
    registry.set_alias("m", "pinned", aliased, "ops")
    register(registry, *runs["low"])  # in development: no protection

    dry = collect_artifacts(
        registry, "m", 2, "roc_auc", True, tmp_path / "work", "gc", dry_run=True
    )
    assert all(out.exists() for _, out in runs.values())  # a dry run deletes nothing
    report = collect_artifacts(registry, "m", 2, "roc_auc", True, tmp_path / "work", "gc")
    assert report.deleted == dry.deleted

    ids = {name: rid for name, (rid, _) in runs.items()}
    assert report.kept[:2] == [ids["top"], ids["second"]]
    assert set(report.protected) == {ids["serving"], ids["aliased"]}
    assert set(report.deleted) == {ids["plain"], ids["failed"], ids["low"]}
    for name, (rid, out) in runs.items():
        gone = rid in report.deleted
        assert out.exists() is not gone, name
        run = registry.get_run(rid)  # metadata stays either way
        assert (run.tags.get("artifacts") == DELETED) is gone
        if gone:
            assert run.tags["artifacts_deleted"] == [str(out.resolve())]
            assert run.tags["artifacts_deleted_at"] > 0
    # Again: nothing more to do, and the audit chain covers the tags.
    again = collect_artifacts(registry, "m", 2, "roc_auc", True, tmp_path / "work", "gc")
    assert again.deleted == {} and registry.verify_audit().ok


def test_lower_is_better_metrics_rank_the_other_way(registry: Registry, tmp_path: Path) -> None:
    root = tmp_path / "work" / "m"
    a, _ = make_run(registry, root, "a", 0.2)
    b, out_b = make_run(registry, root, "b", 0.1)
    report = collect_artifacts(registry, "m", 1, "roc_auc", False, tmp_path / "work", "gc")
    assert report.kept == [b] and set(report.deleted) == {a} and out_b.exists()


def test_the_rollback_target_keeps_its_artifact(registry: Registry, tmp_path: Path) -> None:
    root = tmp_path / "work" / "m"
    old, out_old = make_run(registry, root, "old", 0.5)
    new, _ = make_run(registry, root, "new", 0.9)
    v1 = register(registry, old, out_old, "staging")
    registry.promote("m", v1, "production", "ops")
    v2 = register(registry, new, root / "new" / "artifact", "staging")
    registry.promote("m", v2, "production", "ops")  # v1 leaves production, stays rollback target
    assert registry.get_version("m", v1).stage != "production"
    report = collect_artifacts(registry, "m", 1, "roc_auc", True, tmp_path / "work", "gc")
    assert "rollback target" in report.protected[old] and out_old.exists()


def test_nothing_outside_the_work_directory_is_deleted(registry: Registry, tmp_path: Path) -> None:
    elsewhere = tmp_path / "precious"
    rid, out = make_run(registry, elsewhere, "x", 0.1)
    make_run(registry, tmp_path / "work" / "m", "best", 0.9)
    report = collect_artifacts(registry, "m", 1, "roc_auc", True, tmp_path / "work", "gc")
    assert rid not in report.deleted and "outside" in report.skipped[rid] and out.exists()
    assert registry.get_run(rid).tags.get("artifacts") is None


def test_running_runs_are_left_alone(registry: Registry) -> None:
    rid = registry.start_run("m", "t")
    plan = plan_retention([registry.get_run(rid)], {}, 0, "roc_auc", True)
    assert plan.keep == [] and plan.drop == []
