"""Runs as a list to filter, sort and compare, with step-wise metric series: on SQLite and
PostgreSQL (the ``registry`` fixture), and the pure query functions on their own."""

from __future__ import annotations

import math
from itertools import count

import pytest

from driftd.registry import Conflict, InvalidRequest, Registry
from driftd.registry.metric_series import epoch_series, sparkline
from driftd.registry.run_query import (
    RunFilter,
    compare_runs,
    parse_condition,
    parse_tag,
    select_runs,
)


def seed_runs(registry: Registry) -> dict[str, str]:
    """Four runs of two models: a/best (auc .9, alarm), a/worse (auc .7, manual, tag gpu),
    a/failed, b/only (auc .8, schedule); a clock that moves one second per write."""
    ticks = count(1_800_000_000)
    registry.clock = lambda: float(next(ticks))
    ds = registry.register_dataset("a" * 64, 100, "file:///data/a", "t")
    ds2 = registry.register_dataset("b" * 64, 120, "file:///data/b", "t")

    def run(
        model: str, auc: float | None, trigger: str, lr: float, dataset: int, **tags: object
    ) -> str:
        rid = registry.start_run(
            model,
            "t",
            params={"lr": lr, "hidden": [32, 32]},
            seeds={"seed": 0},
            code={"git": "abc"},
            environment={"python": "3.12", "packages": {"torch": "2.5"}},
            tags=dict(tags),
            dataset_id=dataset,
            trigger={"kind": trigger},
        )
        if auc is None:
            registry.finish_run(rid, "t", status="failed", reason="boom")
        else:
            registry.finish_run(
                rid,
                "t",
                metrics={"roc_auc": auc, "loss": 1 - auc},
                steps={"loss": [(1, 0.9), (2, 0.5), (3, 1 - auc)], "rows_per_s": [(1, 10.0)]},
            )
        return rid

    return {
        "best": run("a", 0.9, "alarm", 0.01, ds),
        "worse": run("a", 0.7, "manual", 0.1, ds2, device="gpu", trials=0),
        "failed": run("a", None, "manual", 0.1, ds),
        "only": run("b", 0.8, "schedule", 0.01, ds),
    }


def test_steps_are_stored_as_series_and_read_back(registry: Registry) -> None:
    ids = seed_runs(registry)
    series = registry.metric_series([ids["best"], ids["failed"]])
    assert set(series) == {ids["best"]}  # a run without steps has no series
    loss = series[ids["best"]]["loss"]
    assert [(p.step, p.value) for p in loss] == [(1, 0.9), (2, 0.5), (3, pytest.approx(0.1))]
    assert all(p.ts > 0 for p in loss)
    only_loss = registry.metric_series([ids["best"]], keys=["rows_per_s"])
    assert set(only_loss[ids["best"]]) == {"rows_per_s"}


def test_log_steps_appends_to_a_running_run_and_refuses_rewrites(registry: Registry) -> None:
    rid = registry.start_run("m", "t")
    assert registry.log_steps(rid, {"loss": [(1, 0.5), (2, math.nan)]}, "t") == 2
    assert registry.log_steps(rid, {"loss": [(3, 0.25)]}, "t") == 1
    with pytest.raises(Conflict, match="step 2"):
        registry.log_steps(rid, {"loss": [(2, 0.1)]}, "t")
    with pytest.raises(InvalidRequest, match="twice"):
        registry.log_steps(rid, {"loss": [(7, 0.1), (7, 0.2)]}, "t")
    with pytest.raises(InvalidRequest, match="integer"):
        registry.log_steps(rid, {"loss": [(-1, 0.1)]}, "t")
    values = [p.value for p in registry.metric_series([rid])[rid]["loss"]]
    assert values == [0.5, None, 0.25]  # NaN kept as a missing value, not dropped
    registry.finish_run(rid, "t")
    with pytest.raises(Conflict, match="ended"):
        registry.log_steps(rid, {"loss": [(4, 0.1)]}, "t")
    # The audit chain covers the series writes.
    assert registry.verify_audit().ok


def test_list_runs_filters_by_model_and_status_newest_first(registry: Registry) -> None:
    ids = seed_runs(registry)
    assert [r.id for r in registry.list_runs(model="a")] == [
        ids["failed"],
        ids["worse"],
        ids["best"],
    ]
    assert [r.id for r in registry.list_runs(status="failed")] == [ids["failed"]]
    assert registry.list_runs(model="nope") == []


def test_filters_sort_and_limit(registry: Registry) -> None:
    ids = seed_runs(registry)
    runs = registry.list_runs()

    def pick(flt: RunFilter, sort: str = "started_at", desc: bool = True) -> list[str]:
        inv = {v: k for k, v in ids.items()}
        return [inv[r.id] for r in select_runs(runs, flt, sort, desc)]

    assert pick(RunFilter(trigger="manual")) == ["failed", "worse"]
    assert pick(RunFilter(tags=(parse_tag("device=gpu"),))) == ["worse"]
    assert pick(RunFilter(tags=(parse_tag("trials"),))) == ["worse"]
    assert pick(RunFilter(tags=(parse_tag("trials=1"),))) == []
    assert pick(RunFilter(metrics=(parse_condition("roc_auc>=0.8"),))) == ["only", "best"]
    assert pick(RunFilter(model="a", metrics=(parse_condition("loss<0.2"),))) == ["best"]
    # Sorted by a metric: best first when descending; runs without it go last either way.
    assert pick(RunFilter(), "metrics.roc_auc") == ["best", "only", "worse", "failed"]
    assert pick(RunFilter(), "metrics.roc_auc", desc=False) == ["worse", "only", "best", "failed"]
    assert pick(RunFilter(), "params.lr", desc=False)[-2:] in (
        ["worse", "failed"],
        ["failed", "worse"],
    )
    assert len(select_runs(runs, RunFilter(), limit=2)) == 2


@pytest.mark.parametrize("bad", ["roc_auc", "roc_auc>>1", "roc_auc>high", ">1"])
def test_a_bad_metric_condition_says_what_was_expected(bad: str) -> None:
    with pytest.raises(InvalidRequest, match="metric condition"):
        parse_condition(bad)


def test_a_bad_sort_key_names_the_valid_ones() -> None:
    with pytest.raises(InvalidRequest, match=r"metrics\.NAME"):
        select_runs([], RunFilter(), sort="colour")


def test_compare_shows_each_section_side_by_side_and_names_the_differences(
    registry: Registry,
) -> None:
    ids = seed_runs(registry)
    best, worse = registry.get_run(ids["best"]), registry.get_run(ids["worse"])
    datasets = {d: registry.get_dataset(d) for d in {best.dataset_id, worse.dataset_id} if d}
    cmp = compare_runs([best, worse], datasets)
    doc = cmp.to_dict()
    assert doc["runs"] == [best.id, worse.id]
    assert doc["sections"]["params"]["lr"] == [0.01, 0.1]  # in the order of doc["runs"]
    assert doc["sections"]["environment"]["packages.torch"] == ["2.5", "2.5"]
    assert doc["sections"]["dataset"]["row_count"] == [100, 120]
    assert doc["sections"]["tags"]["device"] == [None, "gpu"]
    differs = set(cmp.differs)
    assert {"params.lr", "metrics.roc_auc", "dataset.sha256", "trigger.kind"} <= differs
    assert "tags.device" in differs  # present in one run only
    assert not differs & {"seeds.seed", "code.git", "environment.packages.torch", "params.hidden"}
    with pytest.raises(InvalidRequest, match="at least two"):
        compare_runs([best])
    with pytest.raises(InvalidRequest, match="distinct"):
        compare_runs([best, best])


def test_run_versions_name_the_versions_registered_from_a_run(registry: Registry) -> None:
    rid = registry.start_run("m", "t")
    registry.finish_run(rid, "t")
    registry.register_version("m", "file:///a/model.bin", "c" * 64, 3, "t", run_id=rid)
    registry.set_alias("m", "best", 1, "t")
    (v,) = registry.run_versions([rid])[rid]
    assert (v["model"], v["version"], v["stage"], v["aliases"]) == (
        "m",
        1,
        "development",
        ["best"],
    )


def test_set_run_tags_merges_and_is_audited(registry: Registry) -> None:
    rid = registry.start_run("m", "t", tags={"a": 1})
    registry.set_run_tags(rid, {"b": 2}, "t", reason="why")
    assert registry.get_run(rid).tags == {"a": 1, "b": 2}
    assert registry.verify_audit().ok


def test_sparkline_and_epoch_series() -> None:
    assert sparkline([3.0, 2.0, 1.0]) == "█▅▁"  # 3.5 of 7 steps up rounds to the 5th block
    assert sparkline([1.0, 1.0]) == "▄▄"
    assert sparkline([]) == ""
    assert len(sparkline([float(i) for i in range(1000)], width=20)) == 20
    history = [{"loss": 0.5, "rows_per_s": 10.0}, {"loss": 0.25, "rows_per_s": 12.0}]
    assert epoch_series(history) == {
        "loss": [(1, 0.5), (2, 0.25)],
        "rows_per_s": [(1, 10.0), (2, 12.0)],
    }
