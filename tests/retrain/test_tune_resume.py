"""Running ``tune`` twice on one stored study continues it: the second run's trials are new
parameter sets sampled after the first's (not a replay of the same seeds), and the best over
every trial of the study wins. Optuna's log lines go through ``logging``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import optuna
import pytest

from driftd.db import make_engine, upgrade
from driftd.retrain.tune import phase_seed, tune
from tests.retrain.test_tune import SPACE, factory, fake_train


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


@pytest.mark.parametrize("coarse", [0.0, 0.5])
def test_a_second_run_continues_the_study_with_new_params(
    url: str, tmp_path: Path, coarse: float
) -> None:
    kw: dict[str, Any] = {"storage_url": url, "study_name": "fraud-abc-7", "pruner": "none",
                          "seed": 7, "coarse_fraction": coarse}  # fmt: skip
    first = tune(fake_train, factory(tmp_path), SPACE, n_trials=3, **kw)
    second = tune(fake_train, factory(tmp_path), SPACE, n_trials=3, **kw)
    assert len(first.trials) == 3 and len(second.trials) == 6
    keys = [_key(t.params) for t in second.trials]
    assert len(set(keys)) == 6, keys  # no parameter set sampled twice
    assert {_key(t.params) for t in first.trials} < set(keys)  # the first run's, kept
    best = min(t.value for t in second.trials if t.value is not None)
    assert second.best_value == best <= first.best_value
    assert second.best_trial.value == best
    assert second.best_params["x"] == second.best_trial.params["x"]


def test_the_seed_of_a_resumed_study_differs_and_a_new_one_keeps_its_own() -> None:
    assert phase_seed(7, 0) == 7
    seeds = {phase_seed(7, n) for n in range(1, 50)}
    assert len(seeds) == 49 and 7 not in seeds
    assert phase_seed(7, 3) == phase_seed(7, 3)


def test_optuna_logs_go_through_logging_not_its_own_handler(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        with caplog.at_level(logging.INFO, logger="optuna"):
            tune(fake_train, factory(tmp_path), SPACE, n_trials=2, pruner="none")
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    assert any(r.name.startswith("optuna") and "Trial" in r.getMessage() for r in caplog.records)
    out = capsys.readouterr()
    assert "Trial" not in out.out and "Trial" not in out.err  # no handler of Optuna's own
