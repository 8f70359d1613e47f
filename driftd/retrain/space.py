"""Search spaces for tuning, as a config gives them: float / int ranges (optionally log) and
categorical choices of any JSON value (encoded as text where Optuna needs a scalar)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any, Literal

import optuna
from optuna.distributions import CategoricalChoiceType

from driftd.errors import DriftdError

_KEYS = {"kind", "low", "high", "log", "step", "choices"}


class TuneError(DriftdError):
    """A search space, warm start or storage is unusable, or no trial completed."""


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, bool | int | float | str)


def _finite(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)


def _json(v: Any) -> str:
    return json.dumps(v, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One searched parameter: ``low``/``high`` (``log``, ``step``) or categorical ``choices``.

    Categorical choices are JSON values; unless all are scalars they go to Optuna as their
    canonical JSON text (Optuna only stores None/bool/int/float/str) and are decoded back.
    """

    kind: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def encoded(self) -> bool:
        return not all(_scalar(c) for c in self.choices)

    def encode(self, v: Any) -> CategoricalChoiceType:
        return _json(v) if self.encoded else v

    def decode(self, v: Any) -> Any:
        return json.loads(v) if self.kind == "categorical" and self.encoded else v

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        """Sample this parameter in ``trial``; the decoded value."""
        if self.kind == "categorical":
            return self.decode(
                trial.suggest_categorical(name, [self.encode(c) for c in self.choices])
            )
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            step = int(self.step or 1)
            return trial.suggest_int(name, int(self.low), int(self.high), step=step, log=self.log)
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def clip(self, name: str, value: Any) -> CategoricalChoiceType | None:
        """``value`` moved into range and onto the step grid (None: not a choice, drop it)."""
        if self.kind == "categorical":
            enc = self.encode(list(value) if isinstance(value, tuple) else value)
            return enc if enc in [self.encode(c) for c in self.choices] else None
        assert self.low is not None and self.high is not None
        if not _finite(value):
            raise TuneError(f"warm start: parameter {name!r} = {value!r} is not a finite number")
        v = min(max(float(value), self.low), self.high)
        if self.step or self.kind == "int":
            step = self.step or 1
            v = min(self.low + round((v - self.low) / step) * step, self.high)
        return round(v) if self.kind == "int" else v


SearchSpace = Mapping[str, ParamSpec]


def parse_space(mapping: Mapping[str, Any]) -> SearchSpace:
    """A search space from TOML-like tables; errors name the parameter, value and expectation."""
    return {str(name): _parse_one(str(name), raw) for name, raw in mapping.items()}


def _parse_one(name: str, raw: Any) -> ParamSpec:
    def bad(what: str, value: Any, expected: str) -> TuneError:
        return TuneError(
            f"search space parameter {name!r}: {what} = {value!r} is invalid; expected {expected}"
        )

    if isinstance(raw, ParamSpec):
        raw = {k: v for k, v in dataclasses.asdict(raw).items() if v is not None}
        raw = {k: v for k, v in raw.items() if v is not False and v != ()}
    if not isinstance(raw, Mapping):
        raise bad("spec", raw, "a table {low, high[, log, step, kind]} or {choices = [...]}")
    if unknown := sorted(set(raw) - _KEYS):
        raise bad("keys", unknown, f"only {sorted(_KEYS)}")
    kind = raw.get("kind")
    if kind not in (None, "float", "int", "categorical"):
        raise bad("kind", kind, '"float", "int" or "categorical"')
    if "choices" in raw or kind == "categorical":
        choices = raw.get("choices")
        if extra := sorted(set(raw) & {"low", "high", "log", "step"}):
            raise bad("keys", extra, "no low/high/log/step beside choices")
        if not isinstance(choices, list | tuple) or not choices:
            raise bad("choices", choices, "a non-empty list of JSON values")
        try:
            texts = [_json(c) for c in choices]
        except (TypeError, ValueError) as e:
            raise bad("choices", choices, f"JSON values ({e})") from None
        if len(set(texts)) != len(texts):
            raise bad("choices", choices, "distinct values")
        return ParamSpec("categorical", choices=tuple(json.loads(t) for t in texts))
    low, high, logs, step = raw.get("low"), raw.get("high"), raw.get("log", False), raw.get("step")
    for what, v in (("low", low), ("high", high), ("step", step)):
        if (v is not None or what != "step") and not _finite(v):
            raise bad(what, v, "a finite number")
    assert isinstance(low, int | float) and isinstance(high, int | float)
    ints = all(isinstance(v, int) for v in (low, high, step) if v is not None)
    kind = kind or ("int" if ints else "float")
    if kind == "int" and not ints:
        raise bad("low/high/step", (low, high, step), 'integers for kind = "int"')
    if not low < high:
        raise bad("low/high", (low, high), "low < high")
    if not isinstance(logs, bool):
        raise bad("log", logs, "true or false")
    if logs and (low <= 0 or step is not None):
        raise bad("log", logs, "low > 0 and no step for a log-scaled range")
    if step is not None and not 0 < step <= high - low:
        raise bad("step", step, f"0 < step <= {high - low}")
    return ParamSpec("int" if kind == "int" else "float", low, high, logs, step)


DEFAULT_SPACE: SearchSpace = parse_space(
    {
        "lr": {"low": 1e-4, "high": 3e-2, "log": True},
        "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
        "dropout": {"low": 0.0, "high": 0.3},
        "hidden": {"choices": [[64, 64], [128, 128], [256, 256], [256, 256, 256]]},
        "batch_size": {"choices": [512, 2048, 8192, 32768]},
    }
)
