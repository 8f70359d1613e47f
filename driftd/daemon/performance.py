"""Label-free performance estimation on the leader's merged stream, per model version.

For each ``[[models.X.performance]]`` entry and version, the leader keeps the version's first
``reference_s`` of joined rows (score, predicted value, label and, for regressors, the
features; by label time) and samples of its prediction windows (by prediction time), both
capped to ``sample_rows`` by event-id hash, so the answer is the same for any partitioning.
When a window closes and the reference is complete, the version's estimator is fitted on the
reference (``CBPE`` for binary classifiers, ``MulticlassCBPE`` on the ``scores`` of the
declared ``classes``, ``DLE`` for regressors; cached), the window's
metric is estimated with its band, and a ``DriftDetected`` fires when the whole band lies on
the bad side of the reference's realised value by more than ``tolerance``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from driftd.config import ModelSettings, PerformanceSettings
from driftd.config.checks import HIGHER_IS_BETTER
from driftd.contracts.monitor import DriftDetected
from driftd.daemon.checks import span
from driftd.daemon.sample import Sample
from driftd.daemon.streams import CLASS_SCORE, LABEL, PREDICTION, SCORE, class_index
from driftd.daemon.summaries import BucketSummary
from driftd.detectors.cbpe import CBPE, Estimate, MulticlassCBPE
from driftd.detectors.dle import DLE
from driftd.detectors.quality import ConfusionMatrix, RegressionErrors
from driftd.detectors.quality_scores import ROCAUC
from driftd.incidents.evidence import to_json as evidence_json
from driftd.incidents.types import PerformancePoint
from driftd.retrain.store import LabeledStore

F64 = npt.NDArray[np.float64]
HISTORY = 200  # windows of estimates kept per version, for an alarm's evidence
IDX = npt.NDArray[np.intp]


def realised_multiclass(metric: str, scores: F64, pred: IDX, label: IDX) -> float:
    """The metric of labeled multiclass rows (class indices; rows of other classes dropped):
    accuracy and macro precision, recall and F1 from the predicted class, one-vs-rest macro
    ROC AUC from the ``(n, K)`` scores, as ``MulticlassCBPE`` estimates them."""
    ok = (pred >= 0) & (label >= 0)
    k = scores.shape[1]
    if metric == "roc_auc":
        aucs = []
        for j in range(k):
            got = ok & np.isfinite(scores[:, j])
            y = (label[got] == j).astype(np.float64)
            if 0 < y.sum() < len(y):
                auc = ROCAUC(mode="exact")
                auc.update(y, scores[got, j])
                aucs.append(auc.result())
        return float(np.mean(aucs)) if aucs else float("nan")
    cm = ConfusionMatrix(n_classes=k, average="macro")
    cm.update(label[ok], pred[ok])
    return float(getattr(cm.result(), metric))


def realised(metric: str, score: F64, pred: F64, label: F64) -> float:
    """The metric of labeled rows, from the library's quality metrics: classification from
    the 0/1 prediction (score >= 0.5 when the prediction is not 0/1), ROC AUC from the score,
    MAE or RMSE of the prediction."""
    if metric in ("mae", "rmse"):
        errors = RegressionErrors()
        errors.update(label, pred)
        return float(getattr(errors.result(), metric))
    if metric == "roc_auc":
        auc = ROCAUC(mode="exact")
        auc.update(label, score)
        return auc.result()
    yhat = pred if np.isin(pred, (0.0, 1.0)).all() else (score >= 0.5).astype(np.float64)
    cm = ConfusionMatrix(n_classes=2)
    cm.update(label, yhat)
    return float(getattr(cm.result(), metric))


class PerformanceEstimator:
    """One ``[[models.X.performance]]`` entry of one model: references and windows per version."""

    def __init__(self, model: str, s: PerformanceSettings, settings: ModelSettings) -> None:
        self.model, self.s = model, s
        self.regression = settings.task == "regression"
        self.task = settings.task
        self.classes = list(settings.classes) if settings.task == "multiclass" else []
        # the columns after score, prediction (and label): a regressor's features, or each
        # declared class's score
        extra = (
            list(settings.features)
            if self.regression
            else [f"{CLASS_SCORE}{c}" for c in self.classes]
        )
        # joined rows: score, prediction, label, extra; prediction rows: the same but label
        self.joined_streams = [f"jcol:{c}" for c in (SCORE, PREDICTION, LABEL, *extra)]
        self.pred_streams = [f"pcol:{c}" for c in (SCORE, PREDICTION, *extra)]
        self.references: dict[str, tuple[float, Sample]] = {}  # version -> (start, rows)
        self.open: dict[tuple[str, int], Sample] = {}  # (version, window index) -> rows
        self._fitted: dict[str, tuple[Any, float]] = {}  # version -> (estimator, realised)
        # version -> the last HISTORY windows' (end, estimate, lower, upper): an alarm's evidence
        self.history: dict[str, list[list[float]]] = {}
        self.evidence: dict[tuple[str, str, float], dict[str, Any]] = {}  # drained by the brain

    def streams(self) -> list[str]:
        """The summary streams this estimator reads."""
        return self.joined_streams + self.pred_streams

    def add(self, summary: BucketSummary) -> None:
        """One emitted bucket: joined rows into references still open, prediction rows into
        their windows."""
        s = self.s
        for version in summary.versions():
            keys, ts, vals = summary.version_rows(version, self.joined_streams)
            if len(keys):
                start, ref = self.references.get(version, (float(ts.min()), None))
                inside = ts < start + s.reference_s
                if inside.any():
                    part = Sample(keys[inside], ts[inside], vals[inside])
                    width = len(self.joined_streams)
                    ref = (ref or Sample.empty(width)).add(part, s.sample_rows)
                if ref is not None:
                    self.references[version] = (start, ref)
            keys, ts, vals = summary.version_rows(version, self.pred_streams)
            if not len(keys):
                continue
            idx = np.floor(ts / s.window_s).astype(np.int64)
            for w in np.unique(idx).tolist():
                sel = idx == w
                held = self.open.get((version, w)) or Sample.empty(len(self.pred_streams))
                part = Sample(keys[sel], ts[sel], vals[sel])
                self.open[(version, w)] = held.add(part, s.sample_rows)

    def advance(self, clock: float) -> list[DriftDetected]:
        """Estimate every window that ends at or before ``clock`` (in order)."""
        out: list[DriftDetected] = []
        for version, w in sorted(self.open, key=lambda k: (k[1], k[0])):
            end = (w + 1) * self.s.window_s
            if end > clock:
                continue
            window = self.open.pop((version, w))
            got = self._estimate(version, window, end, clock)
            if got is not None:
                out.append(got)
        return out

    def _estimate(
        self, version: str, window: Sample, end: float, clock: float
    ) -> DriftDetected | None:
        s = self.s
        ref = self.references.get(version)
        if ref is None or clock < ref[0] + s.reference_s or len(ref[1]) < s.min_rows:
            return None  # no complete reference yet: the window is not judged
        if len(window) < s.min_rows:
            return None
        estimator, truth = self._fit(version, ref[1].ordered())
        est = self._window_estimate(estimator, window.ordered())
        past = self.history.setdefault(version, [])
        past.append([end, est.value, est.lower, est.upper])
        del past[:-HISTORY]
        bad = (
            est.upper < truth - s.tolerance
            if s.metric in HIGHER_IS_BETTER
            else est.lower > truth + s.tolerance
        )
        if not bad:
            return None
        start = ref[0]
        stream = f"performance:{s.metric}"
        # the reference's realised value at its end, then each window's estimate and band
        points = [PerformancePoint(start + s.reference_s, truth, truth, truth, truth)]
        points += [PerformancePoint(*p) for p in past]
        ev = evidence_json(performance=points, metric=s.metric)
        ev["window_s"], ev["task"] = s.window_s, self.task  # to fill in the realised values later
        self.evidence[(version, stream, end)] = ev
        return DriftDetected(
            model=self.model,
            version=version,
            stream=stream,
            detector="DLE" if self.regression else "CBPE",
            kind="drift",
            ts=end,
            statistic=est.value,
            threshold=truth - s.tolerance if s.metric in HIGHER_IS_BETTER else truth + s.tolerance,
            reference=span("labeled", start, start + s.reference_s),
        )

    def _fit(self, version: str, ref: Sample) -> tuple[Any, float]:
        got = self._fitted.get(version)
        if got is None:
            v = ref.values
            score, pred, label = v[:, 0], v[:, 1], v[:, 2]
            estimator: CBPE | MulticlassCBPE | DLE
            if self.classes:
                yhat, y = class_index(pred, self.classes), class_index(label, self.classes)
                truth = realised_multiclass(self.s.metric, v[:, 3:], yhat, y)
                known = y >= 0
                estimator = MulticlassCBPE(
                    v[known, 3:],
                    y[known],
                    classes=list(range(len(self.classes))),
                    confidence=self.s.confidence,
                )
            elif self.regression:
                truth = realised(self.s.metric, score, pred, label)
                estimator = DLE(v[:, 3:], pred, label, confidence=self.s.confidence)
            else:
                truth = realised(self.s.metric, score, pred, label)
                ok = ~np.isnan(score)
                estimator = CBPE(score[ok], label[ok], confidence=self.s.confidence)
            got = self._fitted[version] = (estimator, truth)
        return got

    def _window_estimate(self, estimator: Any, window: Sample) -> Estimate:
        v = window.values
        if self.classes:
            scores, yhat = v[:, 2:], class_index(v[:, 1], self.classes)
            ok = np.isfinite(scores).all(axis=1)
            # the served class when every scored row names a declared one, else the top score
            r = estimator.estimate(scores, yhat if (yhat[ok] >= 0).all() else None)
            return getattr(r, self.s.metric)  # type: ignore[no-any-return]
        if self.regression:
            r = estimator.estimate(v[:, 2:], v[:, 1])
            return r.mae if self.s.metric == "mae" else r.rmse  # type: ignore[no-any-return]
        pred = v[:, 1]
        binary = bool(np.isin(pred[~np.isnan(v[:, 0])], (0.0, 1.0)).all())
        r = estimator.estimate(v[:, 0], pred if binary else None)
        return getattr(r, self.s.metric)  # type: ignore[no-any-return]

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "spec": self.s.model_dump(mode="json"),
            "references": [[v, st, x.state()] for v, (st, x) in sorted(self.references.items())],
            "open": [[v, w, x.state()] for (v, w), x in sorted(self.open.items())],
            "history": [[v, h] for v, h in sorted(self.history.items())],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore; an entry whose spec changed since the checkpoint starts over."""
        if state["spec"] != self.s.model_dump(mode="json"):
            return
        jw, pw = len(self.joined_streams), len(self.pred_streams)
        self.references = {
            str(v): (float(st), Sample.from_state(x, jw)) for v, st, x in state["references"]
        }
        self.open = {(str(v), int(w)): Sample.from_state(x, pw) for v, w, x in state["open"]}
        self._fitted = {}
        self.history = {
            str(v): [list(map(float, p)) for p in h] for v, h in state.get("history", [])
        }


class ModelPerformance:
    """Every performance entry of one model."""

    def __init__(self, model: str, settings: ModelSettings) -> None:
        self.entries = [PerformanceEstimator(model, p, settings) for p in settings.performance]

    def streams(self) -> list[str]:
        return sorted({s for e in self.entries for s in e.streams()})

    def add(self, summary: BucketSummary) -> None:
        for e in self.entries:
            e.add(summary)

    def advance(self, clock: float) -> list[DriftDetected]:
        out: list[DriftDetected] = []
        for e in self.entries:
            out += e.advance(clock)
        return sorted(out, key=lambda a: (a.ts, a.version))

    def drain_evidence(self) -> dict[tuple[str, str, float], dict[str, Any]]:
        """Every entry's alarm evidence since the last drain, by (version, stream, time)."""
        out: dict[tuple[str, str, float], dict[str, Any]] = {}
        for e in self.entries:
            out.update(e.evidence)
            e.evidence = {}
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"entries": [e.state_dict() for e in self.entries]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for e, st in zip(self.entries, state.get("entries", []), strict=False):
            e.load_state_dict(st)


def performance_streams(settings: ModelSettings) -> Sequence[str]:
    """The summary streams a model's performance entries read (none without entries)."""
    return ModelPerformance("", settings).streams() if settings.performance else []


MIN_REALISED = 30  # labeled rows a window needs before its realised value is shown


def fill_realised(
    evidence: Mapping[str, Any], store: LabeledStore, model: str, version: str
) -> dict[str, Any]:
    """A performance alarm's evidence with the realised value of each window whose labels
    have arrived since (from the labeled store, by prediction time; binary and regression
    models), so that a report shows estimated against realised performance."""
    out = dict(evidence)
    points = [list(p) for p in evidence.get("performance", [])]
    window_s, metric = evidence.get("window_s"), str(evidence.get("metric", ""))
    if len(points) < 2 or not window_s or evidence.get("task") == "multiclass" or not metric:
        return out
    lo, hi = min(p[0] for p in points[1:]) - float(window_s), max(p[0] for p in points[1:])
    table = store.scan(model, lo, hi)
    if not table.num_rows:
        return out
    cols = {
        c: table.column(c).to_numpy(zero_copy_only=False)
        for c in ("ts", "label", "prediction", "score")
    }
    versions = np.asarray(table.column("version").cast("string").to_pylist(), dtype=object)
    mine = versions == version
    for p in points[1:]:
        sel = mine & (cols["ts"] >= p[0] - float(window_s)) & (cols["ts"] < p[0])
        if sel.sum() >= MIN_REALISED:
            p[4] = realised(
                metric,
                cols["score"][sel].astype(np.float64),
                cols["prediction"][sel].astype(np.float64),
                cols["label"][sel].astype(np.float64),
            )
    out["performance"] = points
    return out
