"""Window checks: tests of a model's input windows against a reference (``[[models.X.checks]]``).

Each check runs on the leader's merged stream (every version pooled), on event-time windows
of ``window_s`` (tumbling, or sliding every ``slide_s``), against a reference that is
``pinned`` (a fixed event-time range, or the first window with data), ``rolling`` (the
window just before the one tested) or ``champion`` (the training split of the snapshot the
model's ``champion`` version was trained on, switched when a new champion is promoted).
See ``driftd.daemon.checks`` for the windows and ``driftd.daemon.check_stats`` for the tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from driftd.config.errors import located
from driftd.config.sections import Section

CheckKind = Literal["drift", "missing", "out_of_range", "unseen", "multivariate", "type_errors"]
NumericTest = Literal["ks", "ad", "psi", "js", "wasserstein"]
CategoricalTest = Literal["chi2", "g", "psi", "js"]

# The params each check takes (all optional), with what they mean.
CHECK_PARAMS: dict[str, dict[str, str]] = {
    "drift": {
        "floor": "the numeric test's effect-size floor (default: the test's DEFAULT_FLOORS)",
        "categorical_floor": "the categorical test's effect-size floor",
    },
    "missing": {"min_rate": "the least missing rate assumed for the reference (0.001)"},
    "out_of_range": {
        "q_low": "the reference quantile below which a value is out of range (0.005)",
        "q_high": "the reference quantile above which a value is out of range (0.995)",
    },
    "unseen": {"tolerance": "the rate of unseen categories tolerated (0.001)"},
    "type_errors": {"max_rate": "the least type-error rate assumed for the reference (0.001)"},
    "multivariate": {
        "max_rows": "rows a side in the MMD test (2,000; its cost grows with their square)",
        "n_permutations": "the MMD test's permutations (500)",
    },
}


class SegmentSettings(Section):
    """Per-segment window checks: a prediction's segment is the values of ``keys`` in its
    ``segment`` field (``region=eu,tier=gold``). The first ``max_segments`` segments seen (in
    event-time order) are tested on their own; rows of later ones count as overflow
    (``driftd_check_segment_overflow_rows_total``, on the leader) and are tested in the pool
    only. A segment's sample is drawn from the pooled one (at most ``segment_rows`` rows)."""

    keys: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(min_length=1)]
    max_segments: Annotated[int, Field(ge=1, le=10_000)] = 50
    segment_rows: Annotated[int, Field(ge=100, le=1_000_000)] = 2_000  # sample cap per segment


class WindowCheckSettings(Section):
    """One window check of a model's features against a reference window.

    ``check``: ``drift`` (a two-sample test per feature: ``test`` for numeric features,
    ``categorical_test`` for categorical ones), ``missing`` (missing rate above the
    reference's), ``out_of_range`` (numeric values outside the reference's quantile range),
    ``unseen`` (categories the reference never had), ``multivariate`` (a kernel MMD test of
    the window's numeric rows against the reference's) or ``type_errors`` (the share of
    predictions dead-lettered for a feature of the wrong type, above the reference's). Per
    window, the features' p-values are corrected (``holm``: P(any false alarm) <= ``alpha``
    per window; ``bh``: false-discovery rate <= ``alpha``), with segments over every feature
    of every segment and of the pool.
    ``sample_rows`` caps the rows kept per window, as a uniform sample by a hash of the event
    id, the same for any partitioning.
    """

    check: CheckKind = "drift"
    features: list[str] = []  # empty: every feature the check applies to
    window_s: Annotated[float, Field(gt=0)] = 3600.0
    slide_s: Annotated[float, Field(gt=0)] | None = None  # None: tumbling windows
    reference: Literal["pinned", "rolling", "champion"] = "pinned"
    reference_start: float | None = None  # pinned: event-time range [start, end) of the
    reference_end: float | None = None  # reference; unset: the first window with data
    test: NumericTest = "ks"
    categorical_test: CategoricalTest = "chi2"
    correction: Literal["holm", "bh"] = "holm"
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.01
    min_rows: Annotated[int, Field(ge=10)] = 200
    sample_rows: Annotated[int, Field(ge=100, le=1_000_000)] = 20_000
    by_segment: bool = True  # with [models.X.segments]: test each segment too
    params: dict[str, float] = {}

    @model_validator(mode="after")
    def _consistent(self) -> WindowCheckSettings:
        if self.slide_s is not None and self.slide_s > self.window_s:
            raise located(
                ("slide_s",), self.slide_s, f"at most window_s ({self.window_s:g}) or unset"
            )
        pinned = (self.reference_start, self.reference_end)
        if self.reference != "pinned" and pinned != (None, None):
            raise located(
                ("reference_start",),
                pinned,
                f"unset with reference = {self.reference!r} (a range pins the reference)",
            )
        if (pinned[0] is None) != (pinned[1] is None):
            raise located(("reference_end",), pinned, "reference_start and reference_end both")
        if pinned[0] is not None and pinned[1] is not None and pinned[0] >= pinned[1]:
            raise located(("reference_end",), pinned[1], f"after reference_start ({pinned[0]})")
        if self.check == "type_errors" and self.reference == "champion":
            raise located(
                ("reference",),
                self.reference,
                "pinned or rolling for a type_errors check (a training snapshot holds no "
                "rejected predictions)",
            )
        known = CHECK_PARAMS[self.check]
        for key in self.params:
            if key not in known:
                raise located(
                    ("params", key),
                    self.params[key],
                    f"one of {', '.join(sorted(known))} for a {self.check} check",
                )
        return self


def check_features(
    checks: list[WindowCheckSettings], features: Mapping[str, str]
) -> list[tuple[tuple[str | int, ...], str, str]]:
    """Errors as (path, value, expected) for checks naming unknown features or features of a
    kind the check does not apply to (out_of_range and multivariate: numeric; unseen:
    categorical)."""
    kinds = {"out_of_range": "numeric", "multivariate": "numeric", "unseen": "categorical"}
    errors: list[tuple[tuple[str | int, ...], str, str]] = []
    for i, c in enumerate(checks):
        if c.check == "type_errors":
            if c.features:
                expected = "no features: type errors are counted per prediction"
                errors.append((("checks", i, "features"), ", ".join(c.features), expected))
            continue
        want = kinds.get(c.check)
        valid = [n for n, k in features.items() if want is None or k == want]
        for j, name in enumerate(c.features):
            if name not in valid:
                errors.append(
                    (
                        ("checks", i, "features", j),
                        name,
                        f"a {want or 'declared'} feature for a {c.check} check "
                        f"({', '.join(valid) or 'none declared'})",
                    )
                )
        if not c.features and not valid:
            errors.append((("checks", i, "check"), c.check, f"a model with {want} features"))
    return errors


ClassificationMetric = Literal["accuracy", "precision", "recall", "f1", "roc_auc"]
RegressionMetric = Literal["mae", "rmse"]
HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc"})


class PerformanceSettings(Section):
    """Label-free performance estimation per model version, on event-time windows of
    predictions: CBPE from the score (binary classifiers; accuracy, precision, recall and F1
    from the predicted 0/1 class when the server sends it, else score >= 0.5), multiclass CBPE
    from the ``scores`` of the model's ``classes`` (accuracy, macro precision, recall and F1,
    one-vs-rest macro ROC AUC; from the predicted class) or DLE from the features and
    prediction (regressors). Each version's estimator is fitted on its first
    ``reference_s`` of labeled traffic (by label time); a window alarms when its estimate's
    ``confidence`` band lies wholly on the bad side of the reference's realised value by more
    than ``tolerance``, so a window whose true value is within the tolerance alarms with
    probability at most (1 - confidence) / 2."""

    metric: ClassificationMetric | RegressionMetric = "accuracy"
    window_s: Annotated[float, Field(gt=0)] = 3600.0
    reference_s: Annotated[float, Field(gt=0)] = 86_400.0
    min_rows: Annotated[int, Field(ge=50)] = 500
    sample_rows: Annotated[int, Field(ge=100, le=1_000_000)] = 20_000
    tolerance: Annotated[float, Field(ge=0)] = 0.0
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95


def check_performance(
    performance: list[PerformanceSettings], task: str, classes: Sequence[str] = ()
) -> list[tuple[tuple[str | int, ...], Any, str]]:
    """Errors as (path, value, expected): metrics the model's task has no estimator for, and
    ``classes`` that cannot name a multiclass model's score columns."""
    errors: list[tuple[tuple[str | int, ...], Any, str]] = []
    if classes and task != "multiclass":
        errors.append((("classes",), list(classes), f"no classes for a {task} model"))
    elif len(set(classes)) != len(classes):
        errors.append((("classes",), list(classes), "distinct class names"))
    for i, p in enumerate(performance):
        if task == "multiclass" and len(classes) < 2:
            errors.append(
                (
                    ("classes",),
                    list(classes),
                    f"the model's class names (2 or more, in any order) for performance[{i}]: "
                    "multiclass estimation reads each prediction's scores for every class",
                )
            )
        elif (task == "regression") != (p.metric in ("mae", "rmse")):
            want = "mae or rmse" if task == "regression" else "accuracy, precision, recall, f1 "
            want += "" if task == "regression" else "or roc_auc"
            errors.append((("performance", i, "metric"), p.metric, f"{want} for a {task} model"))
    return errors
