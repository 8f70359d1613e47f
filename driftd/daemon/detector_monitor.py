"""Runs configured streaming detectors per model and version on each batch's columns.

A detector watches one scalar stream of a model version:

- ``error``: 1.0 where a joined prediction differs from its label, else 0.0 (classification),
  or the absolute error (regression); fed in label order as labels join.
- ``score``: the prediction's score, as predictions arrive (NaN scores are skipped).
- ``latency``: the serving latency in milliseconds (NaN skipped).
- ``feature:NAME``: a numeric feature's values, or a categorical feature's stable category
  keys (missing skipped); ``feature:NAME=VALUE``: 1.0 where a categorical feature is VALUE.

Detectors whose thresholds are in the stream's units (PageHinkley, ADWIN) are fed
standardised values by default on every stream but a classifier's 0/1 ``error``
(``Standardized``: mean and sd of a warm-up), so that their defaults mean the same on a
latency in milliseconds as on a score; ``threshold_warnings`` names the configurations left in
raw units.

Each alarm becomes a ``DriftDetected`` event that carries the event time of the value that
fired it. Pure: no I/O, no clock; state is the detectors' own versioned state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

import driftd.detectors as detectors
from driftd.config import DetectorSettings, ModelSettings
from driftd.contracts.monitor import DriftDetected, MonitorBatch
from driftd.contracts.versioning import require_state_version
from driftd.daemon.columns import ModelSchema
from driftd.daemon.streams import stream_values
from driftd.detectors.base import Alarm, Detector
from driftd.detectors.standardized import Standardized
from driftd.errors import ConfigError
from driftd.incidents.evidence import to_json as evidence_json
from driftd.incidents.types import SeriesPoint

SERIES = 500  # points of each detector's statistic kept for an alarm's evidence
MAX_EVIDENCE = 64


def statistic_now(detector: Detector) -> tuple[float, float]:
    """A detector's statistic and threshold now (NaN where it has none yet)."""
    nan = float("nan")
    return float(getattr(detector, "statistic", nan)), float(getattr(detector, "threshold", nan))


STATE_KIND = "driftd.detector_monitor"
STATE_VERSION = 1

DetectorFactory = Callable[[DetectorSettings], Detector]


RAW_UNITS = frozenset({"PageHinkley", "ADWIN"})
"""Detectors whose thresholds are in the units of the values they see."""
BINARY = frozenset({"DDM", "EDDM", "HDDM_A", "HDDM_W"})
"""Detectors that read each value as 0/1 (HDDM: as a value in [0, 1])."""


def binary_stream(stream: str, task: str) -> bool:
    """Whether a stream's values are 0/1: a classifier's errors, or a category indicator."""
    return (stream == "error" and task != "regression") or (
        stream.startswith("feature:") and "=" in stream
    )


def standardizes(spec: DetectorSettings, task: str) -> bool:
    """Whether the detector is fed standardised values: as configured, else for the
    raw-unit detectors on every stream that is not 0/1."""
    if spec.standardize is not None:
        return spec.standardize
    return spec.detector in RAW_UNITS and not binary_stream(spec.stream, task)


DAEMON_DEFAULTS: dict[tuple[str, bool], dict[str, float]] = {
    # (detector, on a 0/1 stream) -> params: chosen with ``calibrate`` for at most 0.5 false
    # alarms per 100k (then tightened where independent streams measured up to 0.95) on fresh
    # stationary streams (restarted every 20,000, 200,000 and 2M values, and after each drift)
    # of every family below; ``benchmarks/daemon_rates.py`` measures what they give.
    # Continuous streams are standardised first (PageHinkley, ADWIN) or self-scaled (CUSUM):
    # Gaussian, Student-t(3) and Laplace noise; 0/1 streams: Bernoulli 0.02, 0.05 and 0.1.
    ("PageHinkley", False): {"delta": 0.25, "threshold": 50.0, "alpha": 1.0},
    ("PageHinkley", True): {"threshold": 55.0, "alpha": 1.0},  # error rates up to 0.1
    ("ADWIN", False): {"delta": 1e-6},
    ("KSWIN", False): {"alpha": 3e-6},  # rank-based: the same rate for every distribution
    ("CUSUM", False): {"threshold": 50.0},
    ("CUSUM", True): {"threshold": 70.0},
    ("DDM", True): {"warm_start": 1_000, "drift_threshold": 3.5},
    ("EDDM", True): {"warm_start": 1_000, "beta": 0.8},
}
"""The daemon's defaults, where the library's (River's) raise more than 1 false alarm per
100k on fresh streams: on a stationary z-score PageHinkley's delta 0.005 and threshold 50 with
forgetting 0.9999 raise 61 to 63, KSWIN's alpha 0.005 128 to 135; on Bernoulli(0.02) errors
restarted every 20k values DDM raises 14.8, EDDM 42.5 and CUSUM 41
(``benchmarks/detectors_rates.py``). Explicit ``params`` win, key by key."""


def detector_params(spec: DetectorSettings, task: str) -> dict[str, Any]:
    """The params a detector is built with: the daemon's defaults for its stream, then the
    configured ones."""
    binary = binary_stream(spec.stream, task)
    if not binary and spec.detector in RAW_UNITS and not standardizes(spec, task):
        return dict(spec.params)  # left in raw units: the z-score defaults would mean nothing
    return {**DAEMON_DEFAULTS.get((spec.detector, binary), {}), **spec.params}


def make_detector(spec: DetectorSettings, task: str = "binary") -> Detector:
    """Construct the detector a spec names, from ``driftd.detectors``, standardised when
    ``standardizes`` says so."""
    cls = getattr(detectors, spec.detector)
    detector: Detector = cls(**detector_params(spec, task))
    if standardizes(spec, task):
        return Standardized(detector, warmup=spec.warmup)
    return detector


def threshold_warnings(models: Mapping[str, ModelSettings]) -> list[str]:
    """Configurations whose thresholds are in the stream's raw units (or that read a
    non-binary stream as 0/1): their false-alarm rate depends on the data's scale."""
    out = []
    for name, model in models.items():
        for i, spec in enumerate(model.detectors):
            where = f"models.{name}.detectors[{i}] ({spec.detector} on {spec.stream})"
            binary = binary_stream(spec.stream, model.task)
            if spec.detector in BINARY and not binary:
                out.append(
                    f"{where}: {spec.detector} reads values as 0/1 but {spec.stream!r} is not a "
                    "0/1 stream; use error (classification) or feature:NAME=VALUE"
                )
            elif spec.detector in RAW_UNITS and not binary and not standardizes(spec, model.task):
                out.append(
                    f"{where}: standardize = false leaves its thresholds in the stream's raw "
                    "units; its false-alarm rate then depends on the data's scale"
                )
            elif spec.detector == "CUSUM" and "scale" in spec.params and not spec.standardize:
                out.append(
                    f"{where}: params.scale = {spec.params['scale']!r} is in the stream's raw "
                    "units; leave it unset to estimate it on the warm-up"
                )
    return out


def check_detectors(models: Mapping[str, ModelSettings]) -> None:
    """Construct every configured detector once, so that bad ``params`` fail start-up (and
    ``driftd config check``) naming the key, the value and what the detector expected."""
    for name, model in models.items():
        for i, spec in enumerate(model.detectors):
            if getattr(detectors, spec.detector, None) is None:
                raise ConfigError(
                    f"models.{name}.detectors[{i}].detector: got {spec.detector!r}; "
                    "it is not available in this build"
                )
            try:
                make_detector(spec, model.task)
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    f"models.{name}.detectors[{i}].params: got {dict(spec.params)!r}; "
                    f"invalid params for {spec.detector}: {exc}"
                ) from None


class DetectorMonitor:
    """The foundation's Monitor hook, running detectors per version and stream."""

    def __init__(
        self,
        model: str,
        schema: ModelSchema,
        settings: ModelSettings,
        factory: DetectorFactory | None = None,
    ) -> None:
        self.model = model
        self.schema = schema
        self.task = settings.task
        self.specs = list(settings.detectors)
        self.factory = factory or (lambda spec: make_detector(spec, settings.task))
        # (version name, spec index) -> detector
        self._detectors: dict[tuple[str, int], Detector] = {}
        # (version, spec index) -> the statistic over event time: (ts, statistic, threshold)
        # after each fed batch and at each alarm, the last SERIES points
        self.series: dict[tuple[str, int], deque[tuple[float, float, float]]] = {}
        # (version, stream, ts) -> a drift alarm's evidence (its statistic series), drained by
        # the brain; at most MAX_EVIDENCE kept where nobody drains (a partition's monitor)
        self.evidence: dict[tuple[str, str, float], dict[str, Any]] = {}

    def _detector(self, version: str, i: int) -> Detector:
        key = (version, i)
        d = self._detectors.get(key)
        if d is None:
            d = self._detectors[key] = self.factory(self.specs[i])
        return d

    def update(self, batch: MonitorBatch) -> Sequence[DriftDetected]:
        """Feed each detector its version's values in batch order; return what fired."""
        events: list[DriftDetected] = []
        for i, spec in enumerate(self.specs):
            got = stream_values(batch, spec.stream, self.task, self.schema.numeric_names)
            if got is None:
                continue
            codes, vals, ts, _ = got
            for code in np.unique(codes).tolist():
                sel = np.flatnonzero(codes == code)
                events += self.feed(batch.versions[code], i, ts[sel], vals[sel])
        return events

    def feed(
        self, version: str, i: int, ts: npt.NDArray[np.float64], vals: npt.NDArray[np.float64]
    ) -> list[DriftDetected]:
        """Feed detector ``i`` of ``version`` these values in order; return what fired, each
        alarm at the event time of the value that fired it."""
        spec = self.specs[i]
        detector = self._detector(version, i)
        alarms: list[Alarm] = detector.update(vals)
        out = [
            DriftDetected(
                model=self.model,
                version=version,
                stream=spec.stream,
                detector=spec.detector,
                kind=a.kind,
                ts=float(ts[a.index]),
                statistic=a.statistic,
                threshold=a.threshold,
            )
            for a in alarms
        ]
        trace = self.series.get((version, i))
        if trace is None:
            trace = self.series[(version, i)] = deque(maxlen=SERIES)
        trace.extend((a.ts, a.statistic, a.threshold) for a in out)
        if len(ts):
            trace.append((float(ts[-1]), *statistic_now(detector)))
        for a in out:
            if a.kind == "drift":
                points = [SeriesPoint(*p) for p in trace]
                self.evidence[(version, spec.stream, a.ts)] = evidence_json(statistic=points)
        while len(self.evidence) > MAX_EVIDENCE:
            del self.evidence[next(iter(self.evidence))]
        return out

    def live(self) -> list[tuple[str, DetectorSettings, float, float]]:
        """(version, spec, statistic, threshold) of every detector now."""
        return [
            (v, self.specs[i], *statistic_now(d)) for (v, i), d in sorted(self._detectors.items())
        ]

    def drain_evidence(self) -> dict[tuple[str, str, float], dict[str, Any]]:
        """Drift alarms' statistic series since the last drain, by (version, stream, time)."""
        out, self.evidence = self.evidence, {}
        return out

    def state_dict(self) -> dict[str, Any]:
        """Each detector's state, keyed by version and spec index."""
        return {
            "kind": STATE_KIND,
            "v": STATE_VERSION,
            "specs": [s.model_dump(mode="json") for s in self.specs],
            "detectors": [
                {"version": v, "spec": i, "state": d.state_dict()}
                for (v, i), d in sorted(self._detectors.items())
            ],
            "series": [[v, i, list(map(list, t))] for (v, i), t in sorted(self.series.items())],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore detectors; those whose spec changed since the checkpoint start fresh."""
        require_state_version(state, STATE_KIND, STATE_VERSION)
        saved = state["specs"]
        self._detectors = {}
        for entry in state["detectors"]:
            i = int(entry["spec"])
            if i < len(self.specs) and saved[i] == self.specs[i].model_dump(mode="json"):
                d = self.factory(self.specs[i])
                d.load_state_dict(entry["state"])
                self._detectors[(str(entry["version"]), i)] = d
        self.series = {
            (str(v), int(i)): deque(
                ((float(p[0]), float(p[1]), float(p[2])) for p in t), maxlen=SERIES
            )
            for v, i, t in state.get("series", [])
            if int(i) < len(self.specs)
            and saved[int(i)] == self.specs[int(i)].model_dump(mode="json")
        }
