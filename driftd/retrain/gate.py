"""The promotion gate: what a candidate must show against the champion, and its error control.

``driftd.retrain.evaluate`` compares the two models metric by metric (``MetricComparison``:
positive differences mean the candidate is better); ``GateSpec`` states the rule below.

Let ``d`` be the true (population) normalised difference of a metric and ``L`` its one-sided
``1 - alpha`` lower confidence bound (the ``alpha`` quantile of the bootstrap distribution of the
difference; ``diff - z_{1-alpha} * se`` for DeLong). The candidate is promoted iff all hold:

1. ``n >= min_samples``;
2. primary metric: ``L_primary > min_gain`` (strictly; ``min_gain >= 0``). For accuracy the
   one-sided exact/continuity-corrected McNemar p-value for "candidate better" must also be
   ``<= alpha`` (it is exact where the percentile bootstrap of a few discordant pairs is not);
3. every guard metric ``g``: ``L_g > -margin_g``.

Condition 2 is a one-sided level-``alpha`` test of ``H0: d_primary <= min_gain``. When the two
models are truly equal, ``d_primary = 0 <= min_gain`` lies in ``H0``, so
``P(promote) <= P(L_primary > min_gain) <= P(L_primary > 0) ~= alpha`` (asymptotically for the
bootstrap and DeLong; adding the McNemar condition or any guard can only lower it). The whole
gate is an intersection-union test (promote only when every null is rejected at ``alpha``), which
keeps the level at ``alpha`` without a multiplicity correction. The issue's wording "better by
>= min_gain with the CI's lower bound > -margin" is implied by this rule (``L > min_gain`` gives
``diff >= L > min_gain >= 0 >= -margin``); the weaker reading, ``L > -margin`` on its own,
would promote an exactly equal candidate with probability about ``1 - alpha`` and is therefore
not used for the primary metric. ``GateSpec.margin`` is the non-inferiority margin of guards
that do not name their own. A guard with margin 0 demands proven superiority on that metric.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from driftd.retrain.paired import _check_alpha
from driftd.retrain.scores import TestName, _metric


@dataclass(frozen=True)
class GateSpec:
    """Promotion gate: see the module docstring for the exact rule and its error control.

    ``guards`` maps a guard metric to its non-inferiority margin (``None``: use ``margin``);
    all gains and margins are in the metric's own units, positive meaning candidate better.
    """

    primary: str
    min_gain: float = 0.0
    margin: float = 0.0
    alpha: float = 0.05
    guards: Mapping[str, float | None] = field(default_factory=dict)
    min_samples: int = 200
    n_boot: int = 2000

    def __post_init__(self) -> None:
        """Validate every field and freeze ``guards``."""
        _metric(self.primary)
        _check_alpha(self.alpha)
        for name, value in (("min_gain", self.min_gain), ("margin", self.margin)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}={value!r} is invalid; valid: finite and >= 0")
        for metric, m in self.guards.items():
            _metric(metric)
            if metric == self.primary:
                raise ValueError(f"guard {metric!r} is also the primary metric")
            if m is not None and not (math.isfinite(m) and m >= 0):
                raise ValueError(f"guard margin {metric}={m!r} is invalid; valid: finite, >= 0")
        if self.min_samples < 2:
            raise ValueError(f"min_samples={self.min_samples!r} is invalid; valid: >= 2")
        if self.n_boot < 100:
            raise ValueError(f"n_boot={self.n_boot!r} is invalid; valid: >= 100")
        object.__setattr__(self, "guards", types.MappingProxyType(dict(self.guards)))

    def guard_margin(self, metric: str) -> float:
        """The non-inferiority margin of a guard metric."""
        m = self.guards[metric]
        return self.margin if m is None else float(m)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for storage."""
        return {
            "primary": self.primary,
            "min_gain": self.min_gain,
            "margin": self.margin,
            "alpha": self.alpha,
            "guards": {k: self.guard_margin(k) for k in self.guards},
            "min_samples": self.min_samples,
            "n_boot": self.n_boot,
        }


@dataclass(frozen=True)
class MetricComparison:
    """One metric for both models, the normalised difference (positive = candidate better).

    ``ci_low``/``ci_high`` (two-sided ``1 - alpha``) and ``lower_bound`` (one-sided, used by
    the gate) come from DeLong for roc_auc and from the bootstrap otherwise; the bootstrap
    interval is always kept in ``bootstrap_ci``. ``p_value``/``p_value_greater`` are
    McNemar's (accuracy) or DeLong's (roc_auc), ``None`` for the bootstrap. ``error`` says why
    a metric could not be computed (its numbers are then NaN).
    """

    metric: str
    higher_is_better: bool
    champion: float
    candidate: float
    diff: float
    ci_low: float
    ci_high: float
    lower_bound: float
    bootstrap_ci: tuple[float, float]
    test: TestName
    p_value: float | None = None
    p_value_greater: float | None = None
    error: str | None = None


def gate_reasons(spec: GateSpec, comps: Mapping[str, MetricComparison], n: int) -> list[str]:
    """Why the gate refuses the candidate, in the rule's order (empty: it passes)."""
    reasons: list[str] = []
    if n < spec.min_samples:
        reasons.append(f"too few holdout rows: n={n} < min_samples={spec.min_samples}")
    reasons += _primary_reasons(comps[spec.primary], spec)
    for g in spec.guards:
        reasons += _guard_reasons(comps[g], spec.guard_margin(g), spec.alpha)
    return reasons


def _primary_reasons(c: MetricComparison, spec: GateSpec) -> list[str]:
    """Why the primary metric does not justify promotion (empty when it does)."""
    level = f"one-sided {100 * (1 - spec.alpha):g}%"
    if c.error is not None:
        return [f"primary {c.metric}: not computable ({c.error})"]
    out: list[str] = []
    if not c.lower_bound > spec.min_gain:
        out.append(
            f"primary {c.metric}: {level} lower bound of the gain {c.lower_bound:+.4g} "
            f"({c.test}; gain {c.diff:+.4g}, champion {c.champion:.4g}, candidate "
            f"{c.candidate:.4g}) does not exceed min_gain {spec.min_gain:g}"
        )
    if c.test == "mcnemar" and not (
        c.p_value_greater is not None and c.p_value_greater <= spec.alpha
    ):
        out.append(
            f"primary {c.metric}: McNemar one-sided p={c.p_value_greater:.4g} > "
            f"alpha {spec.alpha:g}"
        )
    return out


def _guard_reasons(c: MetricComparison, margin: float, alpha: float) -> list[str]:
    """Why a guard metric blocks promotion (empty when it is within its margin)."""
    if c.error is not None:
        return [f"guard {c.metric}: not computable ({c.error})"]
    if c.lower_bound > -margin:
        return []
    return [
        f"guard {c.metric}: one-sided {100 * (1 - alpha):g}% lower bound of the change "
        f"{c.lower_bound:+.4g} ({c.test}; change {c.diff:+.4g}, champion {c.champion:.4g}, "
        f"candidate {c.candidate:.4g}) is not above -margin {-margin:g}"
    ]
