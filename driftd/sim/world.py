"""The simulated world the reference model server answers in: features and a true concept.

Features are standard normal numeric columns ``f0..f{k-1}`` plus, optionally, the two
categorical columns of :mod:`driftd.sim.synth` (``country``, ``device``), stored in the same float
matrix as category codes (the last two columns). The true concept is logistic; at ``drift_at``
(event time, epoch seconds) it changes the way :mod:`driftd.sim.synth`'s does: the sign of half the
numeric weights flips and the inputs shift (f0 mean +0.5 sd, f1 scale x1.5, more ``us``), so a
model fit before the drift does worse after it. Everything is vectorised and deterministic
given the seed (features and labels draw from separate generators).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from driftd.retrain.snapshot import TrainingArrays
from driftd.sim.synth import CATEGORIES

Matrix = npt.NDArray[np.float64]
Times = float | npt.NDArray[np.float64]


class World:
    """Features and true labels of a stationary-then-drifting binary classification problem."""

    def __init__(
        self,
        n_features: int = 8,
        seed: int = 0,
        drift_at: float | None = None,
        *,
        categorical: bool = True,
        numeric_names: Sequence[str] | None = None,
        covariate_shift: bool = True,
    ) -> None:
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        names = list(numeric_names) if numeric_names is not None else None
        if names is not None and len(names) != n_features:
            raise ValueError(f"{len(names)} numeric names given for {n_features} features")
        self.n_features = n_features
        self.seed = seed
        self.drift_at = drift_at
        self.covariate_shift = covariate_shift
        self.numeric_names = names or [f"f{j}" for j in range(n_features)]
        self.categories: dict[str, list[str]] = (
            {c: list(v) for c, v in CATEGORIES.items()} if categorical else {}
        )
        ss = np.random.SeedSequence(seed)
        concept, feats, labels = (np.random.default_rng(s) for s in ss.spawn(3))
        k = n_features
        self.w_before = concept.normal(0, 1, k) / math.sqrt(k) * 2
        self.w_after = self.w_before.copy()
        self.w_after[: max(1, k // 2)] *= -1  # the concept flips for half the features
        self.cat_effects = [concept.normal(0, 0.5, len(v)) for v in self.categories.values()]
        self._feature_rng = feats
        self._label_rng = labels

    @property
    def columns(self) -> list[str]:
        """Column names of the feature matrix: numeric first, then categorical codes."""
        return [*self.numeric_names, *self.categories]

    def drifted(self, t: Times, n: int) -> npt.NDArray[np.bool_]:
        """Whether each of ``n`` rows at time(s) ``t`` lies after the drift point."""
        tt = np.broadcast_to(np.asarray(t, dtype=np.float64), (n,))
        if self.drift_at is None:
            return np.zeros(n, dtype=bool)
        return np.asarray(tt >= self.drift_at)

    def features(self, n: int, t: Times) -> Matrix:
        """``n`` rows of features at event time(s) ``t`` (a scalar or one time per row)."""
        rng = self._feature_rng
        k = self.n_features
        d = self.drifted(t, n)
        x = np.empty((n, k + len(self.categories)))
        x[:, :k] = rng.standard_normal((n, k))
        if self.covariate_shift:
            x[d, 0] += 0.5
            if k > 1:
                x[d, 1] *= 1.5
        x[:, :k] = np.round(x[:, :k], 6)
        for j, vals in enumerate(self.categories.values()):
            codes = rng.integers(0, len(vals), n)
            if j == 0 and self.covariate_shift:
                codes = np.where(d & (rng.random(n) < 0.3), 0, codes)
            x[:, k + j] = codes
        return x

    def logit(self, x: Matrix, t: Times) -> Matrix:
        """The true concept's log-odds of class 1 for rows ``x`` at time(s) ``t``."""
        k = self.n_features
        d = self.drifted(t, len(x))
        num = x[:, :k]
        out = np.where(d, num @ self.w_after, num @ self.w_before)
        for j, eff in enumerate(self.cat_effects):
            out = out + eff[x[:, k + j].astype(np.int64)]
        return np.asarray(out, dtype=np.float64)

    def prob(self, x: Matrix, t: Times) -> Matrix:
        """The true P(y = 1 | x) at time(s) ``t``."""
        return 1.0 / (1.0 + np.exp(-self.logit(x, t)))

    def labels(self, x: Matrix, t: Times) -> npt.NDArray[np.int64]:
        """True labels for rows ``x`` at time(s) ``t``, drawn from the concept then in force."""
        p = self.prob(x, t)
        return (self._label_rng.random(len(x)) < p).astype(np.int64)

    def concept_scorer(self, after_drift: bool = False) -> LogisticScorer:
        """A model that knows the concept before (or after) the drift exactly: a stand-in for a
        trained version when no registry is at hand (the demo, tests)."""
        return LogisticScorer(self, after_drift)

    def arrays(self, x: Matrix, t: Times = 0.0) -> TrainingArrays:
        """The rows as the tabular trainer's arrays (labels zero, ``ts`` = ``t``)."""
        k, n = self.n_features, len(x)
        return TrainingArrays(
            numeric=x[:, :k].astype(np.float32),
            categorical=x[:, k:].astype(np.int32),
            label=np.zeros(n, np.float32),
            ts=np.broadcast_to(np.asarray(t, dtype=np.float64), (n,)).copy(),
            numeric_names=list(self.numeric_names),
            categorical_names=list(self.categories),
            vocabularies=[list(v) for v in self.categories.values()],
        )

    def feature_dicts(self, x: Matrix) -> list[dict[str, float | str | None]]:
        """The rows as Prediction ``features`` mappings (categories by name)."""
        k = self.n_features
        num: list[list[float]] = x[:, :k].tolist()
        cats = [
            [vals[int(c)] for c in x[:, k + j]] for j, vals in enumerate(self.categories.values())
        ]
        names, cnames = self.numeric_names, list(self.categories)
        out: list[dict[str, float | str | None]] = []
        for i, row in enumerate(num):
            d: dict[str, float | str | None] = dict(zip(names, row, strict=True))
            for j, c in enumerate(cnames):
                d[c] = cats[j][i]
            out.append(d)
        return out


class LogisticScorer:
    """P(class 1) from the world's concept (before or after the drift), ignoring time."""

    def __init__(self, world: World, after_drift: bool) -> None:
        self.world = world
        self.after_drift = after_drift

    def __call__(self, arrays: TrainingArrays) -> npt.NDArray[np.float64]:
        """Score the rows of ``arrays`` (in the world's column layout)."""
        w = self.world
        x = np.concatenate([arrays.numeric, arrays.categorical], axis=1).astype(np.float64)
        return w.prob(x, math.inf if self.after_drift else -math.inf)
