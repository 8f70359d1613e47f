"""Hyperparameter tuning: best trial, pruning, failures, warm start, coarse-then-fine, budgets,
seeding, storage in the registry database (SQLite and PostgreSQL) and a real tabular run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from driftd.db import current_revision, head_revision, make_engine, upgrade
from driftd.retrain import tabular
from driftd.retrain.trainer import BUILTIN, TrainRequest, TrainResult
from driftd.retrain.tune import DEFAULT_SPACE, ParamSpec, TrialRow, TuneError, parse_space, tune
from tests.databases import fresh_database
from tests.retrain.test_tabular import make_snap

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = parse_space({"x": {"low": 0.0, "high": 1.0}, "width": {"choices": [[8], [16, 16], [32]]}})
EPOCHS = 5


def fake_train(request: TrainRequest) -> TrainResult:
    """A scripted loss curve ``x + 1/epoch`` reported per epoch; optional sleep and failure."""
    p = request.params
    x = float(p["x"])
    if x > p.get("fail_above", 2.0):
        raise RuntimeError(f"diverged at x={x:.3f}")
    for epoch in range(1, EPOCHS + 1):
        time.sleep(p.get("sleep", 0.0))
        request.report(epoch, {"loss": x + 1.0 / epoch, "other": 1.0})
    path = request.out_dir / "model.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(repr(sorted(p.items())))
    return TrainResult(path, "sha", {"loss": x + 1.0 / EPOCHS}, EPOCHS, "cpu", 1.0)


def factory(tmp: Path, **params: Any) -> Callable[[], TrainRequest]:
    """A base request for ``fake_train`` (no snapshot is read)."""
    base = {"epochs": EPOCHS, **params}
    return lambda: TrainRequest(tmp, "sha", "regression", base, 7, "cpu", True, tmp / "out")


def test_parse_space_infers_kinds_and_round_trips_json_choices() -> None:
    space = parse_space(
        {
            "lr": {"low": 1e-4, "high": 1e-1, "log": True},
            "layers": {"low": 1, "high": 4},
            "units": {"low": 16, "high": 256, "step": 16},
            "f": {"low": 0, "high": 1, "kind": "float"},
            "hidden": {"choices": [[128, 128], [256, 256]]},
            "act": {"choices": ["relu", "gelu"]},
        }
    )
    assert space["lr"] == ParamSpec("float", 1e-4, 1e-1, log=True)
    assert space["layers"].kind == "int" and space["units"].step == 16
    assert space["f"].kind == "float"
    assert space["hidden"].encoded and not space["act"].encoded
    assert space["hidden"].decode(space["hidden"].encode([256, 256])) == [256, 256]
    assert parse_space(space) == space
    assert set(DEFAULT_SPACE) == {"lr", "weight_decay", "dropout", "hidden", "batch_size"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (3, "spec = 3 is invalid; expected a table"),
        ({"low": 1, "high": 2, "lo": 0}, r"keys = \['lo'\] is invalid"),
        ({"low": "a", "high": 2}, "low = 'a' is invalid; expected a finite number"),
        ({"low": 0.0}, "high = None is invalid"),
        ({"low": 2, "high": 1}, r"low/high = \(2, 1\) is invalid; expected low < high"),
        ({"low": 0, "high": 1, "log": True}, "log = True is invalid; expected low > 0"),
        ({"low": 0.5, "high": 2, "kind": "int"}, 'expected integers for kind = "int"'),
        ({"low": 0, "high": 1, "kind": "bool"}, "kind = 'bool' is invalid"),
        ({"low": 0, "high": 10, "step": 0}, "step = 0 is invalid"),
        ({"choices": []}, "expected a non-empty list"),
        ({"choices": [1, 1]}, "expected distinct values"),
        ({"choices": [{1, 2}]}, "expected JSON values"),
        ({"choices": [1], "low": 0}, "no low/high/log/step beside choices"),
    ],
)
def test_parse_space_errors_name_parameter_value_and_expectation(raw: Any, message: str) -> None:
    with pytest.raises(TuneError, match=message) as info:
        parse_space({"p": raw})
    assert "parameter 'p'" in str(info.value)


def test_best_trial_is_the_minimum_of_completed_trials_and_params_are_merged(
    tmp_path: Path,
) -> None:
    seen: list[TrialRow] = []
    r = tune(fake_train, factory(tmp_path, lr=0.1), SPACE, n_trials=8, pruner="none",
             seed=1, progress=seen.append)  # fmt: skip
    values = [t.value for t in r.trials if t.state == "COMPLETE"]
    assert len(values) == 8 and r.best_value == min(v for v in values if v is not None)
    assert r.best_params == {"epochs": EPOCHS, "lr": 0.1, **r.best_trial.params}
    assert isinstance(r.best_params["width"], list)
    assert r.best_result.artifact.parent.name == f"driftd-tune-{r.best_trial.number:04d}"
    assert f"'x', {r.best_params['x']}" in r.best_result.artifact.read_text()
    assert [t.number for t in seen] == list(range(8)) and r.storage == "memory"
    assert r.trials[0].epochs_run == EPOCHS and r.trials[0].seconds >= 0
    assert [p.name for p in r.phases] == ["tpe"] and r.phases[0].sampler == "TPESampler"


@pytest.mark.parametrize("pruner", ["hyperband", "successive_halving"])
def test_a_pruner_fed_by_epoch_reports_stops_bad_trials(tmp_path: Path, pruner: Any) -> None:
    r = tune(fake_train, factory(tmp_path), SPACE, n_trials=10, pruner=pruner, seed=0)
    pruned = [t for t in r.trials if t.state == "PRUNED"]
    assert r.n_pruned == len(pruned) > 0
    assert all(t.epochs_run < EPOCHS and t.value is not None for t in pruned)
    assert r.best_trial.state == "COMPLETE"


def test_a_raising_trainer_fails_its_trial_and_tuning_goes_on(tmp_path: Path) -> None:
    r = tune(fake_train, factory(tmp_path, fail_above=0.5), SPACE, n_trials=8, pruner="none")
    failed = [t for t in r.trials if t.state == "FAIL"]
    assert r.n_failed == len(failed) > 0 and len(r.trials) == 8
    assert all(t.error is not None and "RuntimeError: diverged at x=" in t.error for t in failed)
    assert r.best_params["x"] <= 0.5


def test_warm_start_runs_the_champion_first_clipped_into_the_space(tmp_path: Path) -> None:
    space = parse_space({**SPACE, "n": {"low": 0, "high": 12, "step": 4}})
    champion = {"x": 7.5, "width": (16, 16), "n": 7, "lr": 0.5}
    r = tune(fake_train, factory(tmp_path), space, n_trials=3, warm_start=champion)
    assert r.trials[0].params == {"x": 1.0, "width": [16, 16], "n": 8}
    r = tune(fake_train, factory(tmp_path), space, n_trials=2, warm_start={"width": [64]})
    assert r.trials[0].params["width"] in ([8], [16, 16], [32])  # not a choice: sampled
    with pytest.raises(TuneError, match="parameter 'x' = 'big' is not a finite number"):
        tune(fake_train, factory(tmp_path), space, n_trials=1, warm_start={"x": "big"})


def test_coarse_then_fine_narrows_to_the_best_quartile_and_reports_both(tmp_path: Path) -> None:
    r = tune(fake_train, factory(tmp_path), SPACE, n_trials=10, coarse_fraction=0.6,
             pruner="none", seed=4)  # fmt: skip
    coarse, fine = r.phases
    assert (coarse.name, coarse.sampler, coarse.n_trials) == ("coarse", "RandomSampler", 6)
    assert (fine.name, fine.sampler, fine.n_trials) == ("fine", "TPESampler", 4)
    assert fine.study_name == "driftd-tune-fine"
    done = sorted((t for t in r.trials if t.phase == "coarse"), key=lambda t: t.value or 0.0)
    top = done[:2]  # the best quartile of 6, at least 2
    lo, hi = min(t.params["x"] for t in top), max(t.params["x"] for t in top)
    assert (fine.space["x"].low, fine.space["x"].high) == (lo, hi) and hi - lo < 1.0
    assert list(fine.space["width"].choices) == [
        c for c in SPACE["width"].choices if c in [t.params["width"] for t in top]
    ]
    fine_rows = [t for t in r.trials if t.phase == "fine"]
    assert len(fine_rows) == 4
    assert all(lo <= t.params["x"] <= hi for t in fine_rows)
    assert all(t.params["width"] in fine.space["width"].choices for t in fine_rows)
    assert r.best_value == min(t.value for t in r.trials if t.value is not None)


def test_the_wall_time_budget_stops_tuning_early(tmp_path: Path) -> None:
    t0 = time.monotonic()
    r = tune(fake_train, factory(tmp_path, sleep=0.06), SPACE, n_trials=50, timeout_s=1.0,
             pruner="none")  # fmt: skip
    assert time.monotonic() - t0 < 2.0 and len(r.trials) < 10
    assert r.trials[-1].state == "PRUNED" and r.trials[-1].epochs_run < EPOCHS


def test_the_same_seed_samples_the_same_params(tmp_path: Path) -> None:
    def params(seed: int, coarse: float) -> list[dict[str, Any]]:
        r = tune(fake_train, factory(tmp_path), SPACE, n_trials=12, seed=seed,
                 coarse_fraction=coarse)  # fmt: skip
        return [t.params for t in r.trials]

    assert params(3, 0.0) == params(3, 0.0) != params(4, 0.0)
    # The coarse phase (random, then TPE on the narrowed space) is seeded too, by the seed.
    coarse = params(3, 0.5)
    assert coarse == params(3, 0.5) != params(4, 0.5)
    assert coarse[:6] != params(4, 0.5)[:6]  # already in the coarse phase, not only the fine


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A registry database of each kind, migrated to driftd's head."""
    with fresh_database(request.param, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


def test_the_study_lives_in_the_registry_database_and_resumes(
    registry_url: str, tmp_path: Path
) -> None:
    kw: dict[str, Any] = {"storage_url": registry_url, "study_name": "m-v3", "pruner": "none"}
    first = tune(fake_train, factory(tmp_path), SPACE, n_trials=3, warm_start={"x": 0.3}, **kw)
    again = tune(fake_train, factory(tmp_path), SPACE, n_trials=2, warm_start={"x": 0.3}, **kw)
    assert len(first.trials) == 3 and len(again.trials) == 5  # the champion ran only once
    assert [t.params["x"] for t in again.trials].count(0.3) == 1
    assert again.phases[0].n_trials == 2 and again.best_value <= first.best_value
    assert "m-v3" in optuna.study.get_all_study_names(_storage(registry_url))
    kw["study_name"] = "m-v4"  # coarse-then-fine resumes on the narrowed space it chose first
    one = tune(fake_train, factory(tmp_path), SPACE, n_trials=4, coarse_fraction=0.5, **kw)
    two = tune(fake_train, factory(tmp_path), SPACE, n_trials=4, coarse_fraction=0.5, **kw)
    assert [len(one.trials), len(two.trials), two.n_failed] == [4, 8, 0]
    assert one.phases[1].space == two.phases[1].space
    engine = make_engine(registry_url)
    assert current_revision(engine) == head_revision()  # driftd's schema is untouched
    engine.dispose()


def _storage(url: str) -> optuna.storages.BaseStorage:
    from driftd.retrain.tune import open_storage

    return open_storage(url)


def test_sqlite_storage_needs_the_driftd_schema(tmp_path: Path) -> None:
    with pytest.raises(TuneError, match="no driftd schema; run `driftd db upgrade`"):
        tune(fake_train, factory(tmp_path), SPACE, n_trials=1,
             storage_url=f"sqlite:///{tmp_path}/empty.db")  # fmt: skip


def test_a_real_tabular_trainer_run(tmp_path: Path) -> None:
    snap = make_snap(tmp_path, "binary", n=1500)
    base = {"epochs": 3, "batch_size": 256, "patience": 0}

    def request() -> TrainRequest:
        return TrainRequest(snap.path, snap.sha256, "binary", base, 7, "cpu", True, tmp_path / "o")

    space = parse_space({"lr": DEFAULT_SPACE["lr"], "hidden": {"choices": [[16], [32, 32]]}})
    r = tune(BUILTIN, request, space, n_trials=2, pruner="none", seed=0)
    assert [t.state for t in r.trials] == ["COMPLETE", "COMPLETE"]
    assert r.best_params["hidden"] in ([16], [32, 32]) and r.best_params["epochs"] == 3
    assert r.best_result.artifact.exists() and r.best_result.metrics["loss"] == r.best_value
    assert r.trials[0].epochs_run == 3
    hold = snap.arrays("holdout")
    assert tabular.predict(r.best_result.artifact, hold).shape == (len(hold.label),)
