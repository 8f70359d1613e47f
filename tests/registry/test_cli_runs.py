"""``driftd runs ls|show|compare`` on a real registry (SQLite and PostgreSQL): --json parsed,
filters and sort, a series as a sparkline and a table, differences in a comparison."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result

from driftd.cli.lazy import Lazy
from driftd.cli.main import cli
from driftd.registry import Registry
from tests.registry.test_runs_query import seed_runs

RUNS_HELP = "Training runs: list, filter and sort them, show one, compare several, clean artifacts."

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(registry: Registry, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``driftd runs ...`` against the test registry (listed as the lazy entry main.py has)."""
    monkeypatch.setitem(cli.lazy, "runs", Lazy("driftd.cli.runs:runs", short_help=RUNS_HELP))
    monkeypatch.setenv("DRIFTD_REGISTRY__SECRET", "test-secret")

    def run(*args: str, code: int = 0) -> Result:
        res = CliRunner().invoke(cli, ["runs", *args, "--db", db_url])
        assert res.exit_code == code, (res.stdout, res.stderr)
        return res

    return run


def as_json(invoke: Invoke, *args: str, code: int = 0) -> Any:
    return json.loads(invoke(*args, "--json", code=code).stdout)


def test_the_lazy_entry_matches_the_groups_own_help() -> None:
    from driftd.cli.runs import runs

    assert runs.help == RUNS_HELP


def test_ls_filters_sorts_and_prints_iso_times(registry: Registry, invoke: Invoke) -> None:
    ids = seed_runs(registry)
    names = {v: k for k, v in ids.items()}

    def ls(*args: str) -> list[str]:
        return [names[r["id"]] for r in as_json(invoke, "ls", *args)]

    assert ls() == ["only", "failed", "worse", "best"]  # newest first
    assert ls("--model", "a", "--status", "finished") == ["worse", "best"]
    assert ls("--trigger", "alarm") == ["best"]
    assert ls("--tag", "device=gpu") == ["worse"]
    assert ls("--metric", "roc_auc>0.75", "--metric", "loss<=0.15") == ["best"]
    assert ls("--sort", "metrics.roc_auc") == ["best", "only", "worse", "failed"]
    assert ls("--sort", "metrics.roc_auc", "--asc", "--limit", "2") == ["worse", "only"]
    doc = as_json(invoke, "ls", "--model", "b")
    assert doc[0]["started_at"].endswith("Z") and doc[0]["metrics"]["roc_auc"] == 0.8


def test_ls_refuses_a_malformed_condition_or_sort_key(registry: Registry, invoke: Invoke) -> None:
    res = invoke("ls", "--metric", "roc_auc~1", code=2)
    assert "NAME OP NUMBER" in res.stderr
    res = invoke("ls", "--sort", "colour", code=2)
    assert "metrics.NAME" in res.stderr


def test_ls_table_shows_the_filtered_metric(registry: Registry, invoke: Invoke) -> None:
    ids = seed_runs(registry)
    out = invoke("ls", "--metric", "roc_auc>=0.8").stdout
    assert "roc_auc" in out and ids["best"] in out and ids["worse"] not in out
    assert "0.9" in out and "alarm" in out


def test_show_prints_the_series_as_sparklines_and_a_table(
    registry: Registry, invoke: Invoke
) -> None:
    ids = seed_runs(registry)
    out = invoke("show", ids["best"][:8]).stdout  # a unique prefix is enough
    assert ids["best"] in out and "loss" in out and "█" in out and "▁" in out
    assert "sha256" in out and "python" in out
    table = invoke("show", ids["best"], "--steps", "loss").stdout
    assert "loss by step" in table and "0.5" in table
    doc = as_json(invoke, "show", ids["best"])
    assert [p["value"] for p in doc["series"]["loss"]] == [0.9, 0.5, pytest.approx(0.1)]
    assert doc["series"]["loss"][0]["ts"].endswith("Z")
    assert doc["dataset"]["row_count"] == 100 and doc["run"]["params"]["lr"] == 0.01
    missing = as_json(invoke, "show", ids["best"], "--steps", "nope", code=1)
    assert "has no series 'nope'" in missing["error"] and missing["exit_code"] == 1
    assert as_json(invoke, "show", "f" * 32, code=1)["exit_code"] == 1


def test_compare_highlights_and_lists_the_differences(registry: Registry, invoke: Invoke) -> None:
    ids = seed_runs(registry)
    doc = as_json(invoke, "compare", ids["best"], ids["worse"])
    assert doc["runs"] == [ids["best"], ids["worse"]]
    assert {"params.lr", "metrics.roc_auc", "dataset.sha256", "trigger.kind"} <= set(doc["differs"])
    assert "seeds.seed" not in doc["differs"]
    assert doc["sections"]["params"]["lr"] == [0.01, 0.1]
    assert doc["sections"]["dataset"]["window_start"] == [None, None]
    assert len(doc["series"]["loss"]) == 2 and doc["series"]["loss"][0][0]["step"] == 1
    out = invoke("compare", ids["best"], ids["worse"], "--diff").stdout
    lines = [line for line in out.splitlines() if "params.lr" in line]
    assert lines and "≠" in lines[0]
    assert "seeds.seed" not in out  # --diff: equal fields left out
    full = invoke("compare", ids["best"], ids["worse"]).stdout
    seed_line = next(line for line in full.splitlines() if "seeds.seed" in line)
    assert "≠" not in seed_line
    assert as_json(invoke, "compare", ids["best"], code=1)["error"].startswith("compare needs")
