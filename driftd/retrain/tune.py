"""Hyperparameter tuning for retraining: Optuna TPE with per-epoch pruning, budgets, warm start.

Each trial trains with ``base params | sampled params`` (fixed seed, own ``out_dir`` subfolder
``trials/<study>-<number>``); the trainer's per-epoch ``report`` feeds the pruner, and the best
completed trial's artifact becomes the candidate. Coarse-then-fine runs two studies in the same
storage: ``<study>`` (RandomSampler) then ``<study>-fine`` (TPE on the space narrowed to the
coarse phase's best quartile), because Optuna refuses one parameter with two distributions.
A second run with the same study name continues the study: its trials are added to those
stored, sampled from a seed derived from how many there are (not replaying the first run's),
and the best over all of them wins.

Studies live in the registry database. Optuna and driftd's migrations would both own the
``alembic_version`` table, so on PostgreSQL Optuna's tables go to their own schema
(``optuna``, via ``search_path``); on SQLite they sit beside driftd's, the database must
already carry driftd's schema, and Optuna's own revision check is skipped.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
import sqlalchemy as sa
from optuna.samplers import RandomSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState

from driftd.db import current_revision, make_engine
from driftd.retrain.space import DEFAULT_SPACE, ParamSpec, SearchSpace, TuneError, parse_space
from driftd.retrain.trainer import Trainer, TrainRequest, TrainResult, load_entry_point

__all__ = ["DEFAULT_SPACE", "ParamSpec", "SearchSpace", "TrialRow", "TuneError", "TuneResult"]
__all__ += ["PhaseResult", "narrow", "open_storage", "parse_space", "tune"]

log = logging.getLogger(__name__)
OPTUNA_SCHEMA = "optuna"
Direction = Literal["minimize", "maximize"]
PrunerName = Literal["hyperband", "successive_halving", "none"]
_DONE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclasses.dataclass(frozen=True)
class TrialRow:
    """One trial: its phase, state (COMPLETE/PRUNED/FAIL/...), value and decoded params."""

    phase: str
    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    epochs_run: int
    seconds: float
    error: str | None


@dataclasses.dataclass(frozen=True)
class PhaseResult:
    """One phase of a tune: "tpe" alone, or "coarse" (random) then "fine" (TPE, narrowed)."""

    name: str
    study_name: str
    sampler: str
    space: SearchSpace
    n_trials: int  # trials run by this call
    best_value: float | None


@dataclasses.dataclass(frozen=True)
class TuneResult:
    """The best trial (params merged onto the base params, its artifact) and the whole table."""

    best_params: dict[str, Any]
    best_value: float
    best_trial: TrialRow
    best_result: TrainResult
    trials: tuple[TrialRow, ...]  # every trial of the phases' studies, resumed ones included
    phases: tuple[PhaseResult, ...]
    n_pruned: int
    n_failed: int
    wall_s: float
    study_name: str
    storage: str  # URL without password, or "memory"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's storage in the registry database at ``url`` (see the module docstring)."""
    u = sa.engine.make_url(url)
    if u.get_backend_name() == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
        engine = sa.create_engine(u)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{OPTUNA_SCHEMA}"')
        except sa.exc.IntegrityError:  # another process created it at the same moment
            pass
        finally:
            engine.dispose()
        u = u.update_query_dict({"options": f"-csearch_path={OPTUNA_SCHEMA}"})
        return optuna.storages.RDBStorage(
            u.render_as_string(hide_password=False), engine_kwargs={"pool_pre_ping": True}
        )
    if u.get_backend_name() == "sqlite":
        engine = make_engine(url)
        try:
            revision = current_revision(engine)
        finally:
            engine.dispose()
        if revision is None:
            raise TuneError(
                f"storage {url}: no driftd schema; run `driftd db upgrade` first (Optuna "
                "would otherwise claim the database's alembic_version table)"
            )
        kwargs = {"connect_args": {"timeout": 30.0}}
        return optuna.storages.RDBStorage(url, kwargs, skip_compatibility_check=True)
    raise TuneError(f"storage {url}: only SQLite and PostgreSQL URLs are supported")


def narrow(space: SearchSpace, trials: list[FrozenTrial], direction: Direction) -> SearchSpace:
    """The space spanned by the best quartile (at least 2) of ``trials``' completed ones."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if len(done) < 2:
        return space
    done.sort(key=lambda t: _num(t.value), reverse=direction == "maximize")
    best = done[: max(2, math.ceil(len(done) / 4))]
    out: dict[str, ParamSpec] = {}
    for name, spec in space.items():
        seen = [t.params[name] for t in best if name in t.params]
        if not seen:
            out[name] = spec
        elif spec.kind == "categorical":
            kept = tuple(c for c in spec.choices if spec.encode(c) in seen)
            out[name] = dataclasses.replace(spec, choices=kept)
        else:  # min/max of the values: the same span in log space for log-scaled params
            out[name] = dataclasses.replace(spec, low=min(seen), high=max(seen))
    return out


def _row(phase: str, space: SearchSpace, t: FrozenTrial) -> TrialRow:
    params = {k: space[k].decode(v) if k in space else v for k, v in t.params.items()}
    epochs = t.user_attrs.get("result", {}).get("epochs_run", t.last_step or 0)
    secs = t.user_attrs.get("seconds", 0.0)
    err = t.user_attrs.get("error")
    return TrialRow(phase, t.number, t.state.name, t.value, params, epochs, secs, err)


@dataclasses.dataclass(frozen=True)
class _Trials:
    """What every phase's trials share: the trainer, its requests, the metric and budget."""

    fn: Trainer
    factory: Callable[[], TrainRequest]
    metric: str
    direction: Direction
    deadline: float | None
    progress: Callable[[TrialRow], None] | None


def tune(
    trainer: Trainer | str,
    base_request_factory: Callable[[], TrainRequest],
    space: SearchSpace = DEFAULT_SPACE,
    *,
    n_trials: int,
    timeout_s: float | None = None,
    storage_url: str | None = None,
    study_name: str = "driftd-tune",
    seed: int = 0,
    metric: str = "loss",
    direction: Direction = "minimize",
    pruner: PrunerName = "hyperband",
    warm_start: Mapping[str, Any] | None = None,
    coarse_fraction: float = 0.0,
    progress: Callable[[TrialRow], None] | None = None,
) -> TuneResult:
    """Tune ``trainer`` within ``n_trials`` and ``timeout_s``; the best completed trial wins.

    ``base_request_factory()`` gives the request each trial modifies (params, out_dir, report).
    A trainer exception marks its trial FAIL and tuning goes on. Past ``timeout_s`` no trial
    starts, and once some trial has completed a running one stops at its next epoch report.
    """
    if n_trials < 1 or not 0 <= coarse_fraction < 1:
        raise TuneError(f"n_trials={n_trials} must be >= 1, coarse_fraction in [0, 1)")
    fn = load_entry_point(trainer) if isinstance(trainer, str) else trainer
    base_params = dict(base_request_factory().params)
    t0 = time.monotonic()
    deadline = None if timeout_s is None else t0 + timeout_s
    trials = _Trials(fn, base_request_factory, metric, direction, deadline, progress)
    storage: optuna.storages.BaseStorage = (
        optuna.storages.InMemoryStorage() if storage_url is None else open_storage(storage_url)
    )
    phases: list[tuple[PhaseResult, optuna.Study]] = []
    quiet_optuna()
    try:
        for phase, name, n in _plan(study_name, n_trials, coarse_fraction):
            study = optuna.create_study(
                storage=storage, sampler=_sampler(phase, seed, 0), pruner=_pruner(pruner),
                study_name=name, direction=direction, load_if_exists=True,
            )  # fmt: skip
            if existing := len(study.get_trials(deepcopy=False)):
                # A study resumed: new trials follow the ones it holds, from a seed of their own.
                study.sampler = _sampler(phase, seed, existing)
            if phase == "fine":
                space = _fine_space(study, space, phases[0][1], direction)
            warm = warm_start if not phases else None  # the first phase tries the champion
            phases.append((_run_phase(trials, study, phase, n, space, warm), study))
        rows = [(_row(p.name, p.space, t), t) for p, s in phases for t in s.get_trials()]
    finally:
        if isinstance(storage, optuna.storages.RDBStorage):
            storage.engine.dispose()
    shown = "memory" if storage_url is None else sa.make_url(storage_url).render_as_string()
    wall_s = time.monotonic() - t0
    return _best(rows, [p for p, _ in phases], base_params, direction, study_name, shown, wall_s)


def quiet_optuna() -> None:
    """Optuna's log lines go to the ``logging`` module (``optuna.*`` loggers, shown or not by
    driftd's log settings, on stderr), not to its own handler among a command's output."""
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()


def phase_seed(seed: int, existing: int) -> int:
    """The sampler seed of a run that finds ``existing`` trials in its study: ``seed`` for a
    new study (the same seed samples the same params), and for a resumed one a seed derived
    from both, so that a second run samples new params instead of replaying the first's."""
    if existing == 0:
        return seed
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, existing]).generate_state(1)[0])


def _sampler(phase: str, seed: int, existing: int) -> optuna.samplers.BaseSampler:
    s = phase_seed(seed, existing)
    return RandomSampler(seed=s) if phase == "coarse" else TPESampler(seed=s)


def _plan(study_name: str, n_trials: int, coarse_fraction: float) -> list[tuple[str, str, int]]:
    """The phases as (phase, study name, trials): "tpe" alone, or "coarse" then "fine"."""
    n_coarse = math.ceil(coarse_fraction * n_trials)
    if not n_coarse:
        return [("tpe", study_name, n_trials)]
    return [("coarse", study_name, n_coarse), ("fine", f"{study_name}-fine", n_trials - n_coarse)]


def _run_phase(
    trials: _Trials,
    study: optuna.Study,
    phase: str,
    n: int,
    space: SearchSpace,
    warm_start: Mapping[str, Any] | None,
) -> PhaseResult:
    """Run up to ``n`` trials of one phase within the budget left; what the phase achieved."""
    before = len(study.get_trials(deepcopy=False, states=_DONE))
    if warm_start:
        _enqueue(study, space, warm_start)
    left = None if trials.deadline is None else trials.deadline - time.monotonic()
    if n > 0 and (left is None or left > 0):
        objective = _objective(
            trials.fn, trials.factory, space, trials.metric, trials.deadline, phase
        )
        done = [] if trials.progress is None else [_on_trial(trials.progress, phase, space)]
        study.optimize(objective, n, timeout=left, catch=(Exception,), callbacks=done)
    ran = len(study.get_trials(deepcopy=False, states=_DONE)) - before
    values = [t.value for t in study.get_trials(states=(TrialState.COMPLETE,))]
    best = (min if trials.direction == "minimize" else max)(values, default=None, key=_num)
    sampler = type(study.sampler).__name__
    return PhaseResult(phase, study.study_name, sampler, space, ran, best)


def _best(
    rows: list[tuple[TrialRow, FrozenTrial]],
    phases: list[PhaseResult],
    base_params: Mapping[str, Any],
    direction: Direction,
    study_name: str,
    storage: str,
    wall_s: float,
) -> TuneResult:
    """The best completed trial (its params on the base params, its artifact) and the table."""
    complete = [(r, t) for r, t in rows if r.state == "COMPLETE" and r.value is not None]
    if not complete:
        raise TuneError(f"study {study_name!r}: no trial completed ({len(rows)} trials)")
    sign = 1.0 if direction == "minimize" else -1.0
    best_row, best_t = min(complete, key=lambda rt: sign * _num(rt[0].value))
    res = best_t.user_attrs["result"]
    return TuneResult(
        best_params={**base_params, **best_row.params},
        best_value=_num(best_row.value),
        best_trial=best_row,
        best_result=TrainResult(**{**res, "artifact": Path(res["artifact"])}),
        trials=tuple(r for r, _ in rows),
        phases=tuple(phases),
        n_pruned=sum(r.state == "PRUNED" for r, _ in rows),
        n_failed=sum(r.state == "FAIL" for r, _ in rows),
        wall_s=wall_s,
        study_name=study_name,
        storage=storage,
    )


def _num(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def _enqueue(study: optuna.Study, space: SearchSpace, warm_start: Mapping[str, Any]) -> None:
    """Queue the champion's params (those in the space, clipped) unless already run."""
    fixed = {k: space[k].clip(k, v) for k, v in warm_start.items() if k in space}
    if dropped := sorted(k for k, v in fixed.items() if v is None):
        log.warning("warm start: %s not among the choices; sampled instead", dropped)
    params = {k: v for k, v in fixed.items() if v is not None}
    study.enqueue_trial(params, {"warm_start": True}, skip_if_exists=True)


def _fine_space(
    fine: optuna.Study, space: SearchSpace, coarse: optuna.Study, direction: Direction
) -> SearchSpace:
    """The narrowed space, fixed at the fine study's first run (Optuna refuses a changed one)."""
    if stored := fine.user_attrs.get("space"):
        return {k: ParamSpec(**{**d, "choices": tuple(d["choices"])}) for k, d in stored.items()}
    space = narrow(space, coarse.get_trials(deepcopy=False), direction)
    fine.set_user_attr("space", {k: dataclasses.asdict(v) for k, v in space.items()})
    return space


def _on_trial(
    progress: Callable[[TrialRow], None], phase: str, space: SearchSpace
) -> Callable[[optuna.Study, FrozenTrial], None]:
    """An Optuna callback that hands each finished trial's row to ``progress``."""
    return lambda _study, trial: progress(_row(phase, space, trial))


def _pruner(name: PrunerName) -> optuna.pruners.BasePruner:
    """Hyperband or successive halving from epoch 1 on, or no pruning."""
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise TuneError(f"pruner={name!r} is invalid; expected hyperband, successive_halving, none")


def _objective(
    fn: Trainer,
    factory: Callable[[], TrainRequest],
    space: SearchSpace,
    metric: str,
    deadline: float | None,
    phase: str,
) -> Callable[[optuna.Trial], float]:
    """Train one trial; per-epoch reports feed the pruner and the wall-time budget."""

    def objective(trial: optuna.Trial) -> float:
        sampled = {name: spec.suggest(trial, name) for name, spec in space.items()}
        base = factory()
        seen: list[float] = []

        def report(epoch: int, metrics: dict[str, float]) -> None:
            if metric not in metrics:
                raise KeyError(f"the trainer reported {sorted(metrics)}, not {metric!r}")
            seen.append(float(metrics[metric]))
            trial.report(seen[-1], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}: {metric} = {seen[-1]:.6g}")
            if (
                deadline is not None
                and time.monotonic() > deadline
                and trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            ):
                trial.set_user_attr("stopped", "timeout")
                raise optuna.TrialPruned(f"wall-time budget spent at epoch {epoch}")

        out = Path(base.out_dir) / "trials" / f"{trial.study.study_name}-{trial.number:04d}"
        request = dataclasses.replace(
            base, params={**base.params, **sampled}, out_dir=out, report=report
        )
        trial.set_user_attr("phase", phase)
        t0 = time.monotonic()
        try:
            result = fn(request)
        except optuna.TrialPruned:
            raise
        except Exception as e:
            trial.set_user_attr("error", f"{type(e).__name__}: {e}")
            raise
        finally:
            trial.set_user_attr("seconds", time.monotonic() - t0)
        res = dataclasses.asdict(result) | {"artifact": str(result.artifact)}
        trial.set_user_attr("result", res)
        if metric in result.metrics:
            return float(result.metrics[metric])
        if not seen:
            raise KeyError(f"the trainer neither reported nor returned {metric!r}")
        return min(seen) if trial.study.direction.name == "MINIMIZE" else max(seen)

    return objective
