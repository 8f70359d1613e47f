"""Registry state as metrics: versions in service with lineage labels, weights, promotions,
rollbacks, retrain jobs by state — on SQLite and PostgreSQL."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from driftd.daemon.metrics.registry import RegistryCollector
from driftd.registry import Registry
from driftd.retrain.jobs import JobQueue

SHA = "ab" * 32


def _families(reg: Registry) -> dict[str, list[tuple[dict[str, str], float]]]:
    r = CollectorRegistry()
    r.register(RegistryCollector(reg.engine))
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(generate_latest(r).decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_registry_metrics(registry: Registry) -> None:
    ds = registry.register_dataset("cd" * 32, 10, "file:///d", "t")
    run = registry.start_run("fraud", "t", code={"commit": "0123456789abcdef"}, dataset_id=ds)
    registry.register_version("fraud", "file:///a", SHA, 1, "t", stage="staging")
    registry.promote("fraud", 1, "production", "ops")
    registry.register_version("fraud", "file:///b", SHA, 1, "t", run_id=run, parent_version=1,
                              stage="staging")  # fmt: skip
    registry.promote("fraud", 2, "canary", "ops")
    registry.set_traffic("fraud", {1: 0.75, 2: 0.25}, "driftd", "canary", "d1")
    queue = JobQueue(registry.engine)
    queue.submit("fraud", {"kind": "manual", "key": "a"}, {"entry": "x:y", "params": {}})
    f = _families(registry)
    info = {lab["version"]: lab for lab, _ in f["driftd_model_version_info"]}
    assert info["1"]["stage"] == "production" and info["1"]["alias"] == "champion"
    assert info["2"] == {
        "model": "fraud", "version": "2", "stage": "canary", "alias": "canary", "run": run,
        "data_version": ("cd" * 32)[:12], "code_version": "0123456789ab", "parent": "1",
    }  # fmt: skip
    weights = {lab["version"]: v for lab, v in f["driftd_canary_weight"]}
    assert weights == {"1": 0.75, "2": 0.25}
    assert f["driftd_promotions_total"] == [({"model": "fraud"}, 1.0)]
    jobs = {lab["state"]: v for lab, v in f["driftd_retrain_jobs"]}
    assert jobs["queued"] == 1.0 and jobs["running"] == 0.0

    registry.rollback("fraud", "driftd", "latency")
    f = _families(registry)
    assert f["driftd_rollbacks_total"] == [({"model": "fraud"}, 1.0)]
    assert "2" not in {lab["version"] for lab, _ in f["driftd_model_version_info"]}
    weights = {lab["version"]: v for lab, v in f["driftd_canary_weight"]}
    assert weights == {"1": 1.0}  # the rollback moved all traffic back to the champion
