"""Window checks on the leader's merged stream: event-time windows against a reference.

The brain hands each emitted bucket's feature rows (every version pooled) to a model's
checks. A check keeps a bounded uniform sample (``sample.Sample``) of each open window: the
``sample_rows`` rows with the smallest (event-id hash, event time), the same sample whatever
the partitioning. When the
event clock passes a window's end, the window is tested against the reference
(``check_stats``) and each feature that fails becomes a ``DriftDetected`` at the window's
end, naming the reference it was measured against.

References: ``pinned`` with ``reference_start``/``reference_end`` is the sample of that
event-time range, and only windows that start at or after its end are tested; ``pinned``
without a range is the first window with ``min_rows`` rows (not tested itself); ``rolling``
is the window just before the one tested; ``champion`` is the champion's training snapshot,
set by the leader (``ModelChecks.set_champion``; pooled only: snapshots carry no segments),
and windows close untested until it is known. Window bounds are multiples of the slide (the
window length for tumbling windows) in event time. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from driftd.config import ModelSettings, SegmentSettings, WindowCheckSettings
from driftd.contracts.monitor import DriftDetected
from driftd.daemon.check_stats import ROW, Outcome, counts_outcome, decide, raw_outcomes
from driftd.daemon.sample import Sample, merge
from driftd.daemon.streams import SEGMENT
from driftd.incidents.evidence import to_json as evidence_json
from driftd.incidents.explain import Kind, explain

ALL_VERSIONS = "*"  # the version of a check's alarms: checks pool every version
STATE_VERSION = 1


def span(kind: str, start: float, end: float) -> str:
    """A reference's label: its kind and event-time range, ``pinned:[1764547200,1764550800)``
    (whole seconds as integers, so that epoch times stay exact)."""

    def t(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:.3f}"

    return f"{kind}:[{t(start)},{t(end)})"


def check_features(check: WindowCheckSettings, features: Mapping[str, str]) -> list[str]:
    """The features a check tests: those it names, or every feature of the kinds it applies
    to (out_of_range and multivariate: numeric; unseen: categorical; others: all)."""
    if check.check == "type_errors":
        return []  # counted per prediction, not per feature
    if check.features:
        return list(check.features)
    want = {"out_of_range": "numeric", "multivariate": "numeric", "unseen": "categorical"}
    kind = want.get(check.check)
    return [n for n, k in features.items() if kind is None or k == kind]


def check_columns(model: ModelSettings) -> list[str]:
    """Every feature some check of the model reads, in declaration order, then the segment
    column (``@segment``) when the model has segments and checks."""
    used = {n for c in model.checks for n in check_features(c, model.features)}
    cols = [n for n in model.features if n in used]
    return cols + ([SEGMENT] if model.segments is not None and model.checks else [])


def sample_rows(model: ModelSettings) -> int:
    """The rows a bucket keeps per version and row group: the largest cap of the model's
    window checks and performance entries (0 without either)."""
    caps = [c.sample_rows for c in model.checks] + [p.sample_rows for p in model.performance]
    return max(caps, default=0)


Populations = dict[str, Sample]  # "" (every row) and each tracked segment's label -> sample


def _pops_state(pops: Populations) -> list[Any]:
    return [[label, x.state()] for label, x in sorted(pops.items())]


def _pops_from(state: Sequence[Any], width: int) -> Populations:
    return {str(label): Sample.from_state(x, width) for label, x in state}


MAX_NAMES = 10_000  # category and segment names the leader keeps for explanations
Counts = list[float]  # type_errors: [rejected, accepted] predictions
Content = Populations | Counts  # what a window (or reference) holds, by the check's kind


class WindowCheck:
    """One configured check of one model: its open windows, its reference, its alarms.

    A window holds samples (``Populations``: the pooled sample "" and, when the check runs by
    segment, one per tracked segment, capped at ``segment_rows``; its p-values are corrected
    together over every feature of every population tested) or, for ``type_errors``, counts
    of rejected and accepted predictions. References and windows are handled alike.
    """

    def __init__(
        self,
        model: str,
        check: WindowCheckSettings,
        features: Mapping[str, str],
        segments: SegmentSettings | None = None,
    ) -> None:
        self.model, self.s = model, check
        self.names = check_features(check, features)
        self.categorical = [features[n] == "categorical" for n in self.names]
        self.counted = check.check == "type_errors"
        self.slide = check.slide_s or check.window_s
        self.segment_rows = segments.segment_rows if segments and check.by_segment else 0
        self.detector = "window:" + (
            check.check if check.check != "drift" else f"drift:{check.test}"
        )
        self.open: dict[int, Content] = {}  # window index (start = index * slide)
        self.closed: dict[int, Content] = {}  # recent closed windows (a rolling reference)
        self.reference: Content | None = None
        self.reference_label = ""
        # explanations of the alarms raised since the brain last drained them (not state: a
        # replayed merge raises them again)
        self.evidence: dict[tuple[str, str, float], dict[str, Any]] = {}
        self.category_names: Mapping[int, str] = {}  # category key -> name, for explanations
        if check.reference_start is not None and check.reference_end is not None:
            self.reference = self._empty()
            self.reference_label = span("pinned", check.reference_start, check.reference_end)

    def _empty(self) -> Content:
        return [0.0, 0.0] if self.counted else {}

    def _size(self, content: Content) -> float:
        """Rows in the pooled sample, or predictions counted."""
        if isinstance(content, list):
            return sum(content)
        pooled = content.get("")
        return 0 if pooled is None else len(pooled)

    def _add(self, pops: Populations, rows: Sample, seg: Sequence[str] | None) -> None:
        pops[""] = merge(pops.get(""), rows, self.s.sample_rows)
        if seg is None or not self.segment_rows:
            return
        labels = np.asarray(seg, dtype=object)
        for label in sorted(set(seg) - {""}):
            part = rows.take(labels == label)
            pops[label] = merge(pops.get(label), part, self.segment_rows)

    # -- feeding -------------------------------------------------------------------------
    def add(self, rows: Sample, seg: Sequence[str] | None = None) -> None:
        """Add rows (their values in the check's feature order; ``seg``: each row's tracked
        segment, "" for none) to every window they fall in, and to a pinned reference range."""
        s = self.s
        if not len(rows) or self.counted:
            return
        segs = np.asarray(seg, dtype=object) if seg is not None else None

        def part_of(mask: npt.NDArray[np.bool_]) -> tuple[Sample, list[str] | None]:
            return rows.take(mask), None if segs is None else segs[mask].tolist()

        if s.reference_start is not None and s.reference_end is not None:
            inside = (rows.ts >= s.reference_start) & (rows.ts < s.reference_end)
            if inside.any():
                assert isinstance(self.reference, dict)
                self._add(self.reference, *part_of(inside))
        last = np.floor(rows.ts / self.slide).astype(np.int64)
        for back in range(math.ceil(s.window_s / self.slide)):
            idx = last - back
            inside = rows.ts < idx * self.slide + s.window_s
            for w in np.unique(idx[inside]).tolist():
                pops = self.open.setdefault(w, {})
                assert isinstance(pops, dict)
                self._add(pops, *part_of(inside & (idx == w)))

    def add_counts(self, ts: float, rejected: float, accepted: float) -> None:
        """``type_errors``: one bucket's predictions rejected for a type error and accepted,
        at the bucket's start time, into its windows and a pinned reference range."""
        s = self.s
        lo, hi = s.reference_start, s.reference_end
        held = [self.reference] if lo is not None and hi is not None and lo <= ts < hi else []
        last = math.floor(ts / self.slide)
        for back in range(math.ceil(s.window_s / self.slide)):
            w = last - back
            if ts < w * self.slide + s.window_s:
                held.append(self.open.setdefault(w, [0.0, 0.0]))
        for c in held:
            assert isinstance(c, list)
            c[0] += rejected
            c[1] += accepted

    def advance(self, clock: float) -> list[DriftDetected]:
        """Test every open window that ends at or before ``clock``, in start order."""
        out: list[DriftDetected] = []
        for w in sorted(self.open):
            end = w * self.slide + self.s.window_s
            if end > clock:
                break
            out += self._close(w, self.open.pop(w), end)
        return out

    # -- closing -------------------------------------------------------------------------
    def _close(self, w: int, content: Content, end: float) -> list[DriftDetected]:
        s = self.s
        start = w * self.slide
        ref, label = self._reference(w, start)
        if s.reference == "rolling":
            self.closed[w] = content
            horizon = w - math.ceil(s.window_s / self.slide)
            self.closed = {k: v for k, v in self.closed.items() if k >= horizon}
        if ref is None:
            first = s.reference == "pinned" and s.reference_end is None
            if first and self._size(content) >= s.min_rows:
                self.reference = content  # the first window with data is the reference
                self.reference_label = span("pinned", start, end)
            return []
        fired = [(population, o) for population, o in self._test(content, ref) if o.drift]
        if fired and not isinstance(content, list) and not isinstance(ref, list):
            for population in sorted({p for p, _ in fired}):
                got = self._explain(content[population], ref[population])
                for p, o in fired:
                    if p == population and got is not None:
                        self.evidence[(ALL_VERSIONS, _stream(o.feature, p), end)] = got
        return [
            DriftDetected(
                model=self.model,
                version=ALL_VERSIONS,
                stream=_stream(o.feature, population),
                detector=self.detector,
                kind="drift",
                ts=end,
                statistic=o.statistic,
                threshold=o.threshold,
                reference=label,
            )
            for population, o in fired
        ]

    def _explain(self, current: Sample, reference: Sample) -> dict[str, Any] | None:
        """Which of the check's features moved in a window that alarmed, ranked, as stored
        evidence; None when the samples cannot be compared (the alarm stands without it)."""
        # a feature missing from either side has no distribution to compare: left out
        cols = [
            i
            for i in range(len(self.names))
            if np.isfinite(reference.values[:, i]).any() and np.isfinite(current.values[:, i]).any()
        ]
        kinds: dict[str, Kind] = {
            self.names[i]: "categorical" if self.categorical[i] else "numeric" for i in cols
        }
        by_key = cast(Mapping[Hashable, str], self.category_names)
        names = {n: by_key for n, k in kinds.items() if k == "categorical"}
        try:
            shifts = explain(
                {self.names[i]: reference.values[:, i] for i in cols},
                {self.names[i]: current.values[:, i] for i in cols},
                kinds,
                names=names,
            )
        except ValueError:
            return None
        return evidence_json(shifts)

    def drain_evidence(self) -> dict[tuple[str, str, float], dict[str, Any]]:
        """The explanations of alarms since the last drain, by (version, stream, time)."""
        out, self.evidence = self.evidence, {}
        return out

    def _test(self, content: Content, ref: Content) -> list[tuple[str, Outcome]]:
        """Each population's outcomes, decided together (counts: one, when both sides have
        ``min_rows`` predictions)."""
        s = self.s
        if isinstance(content, list) or isinstance(ref, list):
            assert isinstance(content, list) and isinstance(ref, list)
            if sum(ref) < s.min_rows or sum(content) < s.min_rows:
                return []
            return [("", counts_outcome(s, content, ref))]
        tested: list[tuple[str, Outcome]] = []
        for population in sorted(set(content) & set(ref)):
            cur, base = content[population].values, ref[population].values
            raw = raw_outcomes(s, self.names, self.categorical, base, cur)
            tested += [(population, o) for o in raw]
        decided = decide(s, [o for _, o in tested])
        return [(population, o) for (population, _), o in zip(tested, decided, strict=True)]

    def set_reference(self, label: str, rows: Sample) -> bool:
        """Use ``rows`` (sampled down) as the reference from now on; False if ``label`` is
        the reference already."""
        if label == self.reference_label:
            return False
        self.reference = {"": Sample.empty(rows.values.shape[1]).add(rows, self.s.sample_rows)}
        self.reference_label = label
        return True

    def _reference(self, w: int, start: float) -> tuple[Content | None, str]:
        s = self.s
        if s.reference == "rolling":
            back = w - math.ceil(s.window_s / self.slide)  # the window ending at this start
            return self.closed.get(back), span("rolling", back * self.slide, start)
        if s.reference_end is not None and start < s.reference_end:
            return None, self.reference_label  # the window overlaps the reference range
        return self.reference, self.reference_label

    # -- state ---------------------------------------------------------------------------
    def _dump(self, content: Content) -> Any:
        return list(content) if isinstance(content, list) else _pops_state(content)

    def _load(self, state: Any) -> Content:
        if self.counted:
            return [float(state[0]), float(state[1])]
        return _pops_from(state, len(self.names))

    def state_dict(self) -> dict[str, Any]:
        return {
            "spec": self.s.model_dump(mode="json"),
            "segment_rows": self.segment_rows,
            "open": [[w, self._dump(x)] for w, x in sorted(self.open.items())],
            "closed": [[w, self._dump(x)] for w, x in sorted(self.closed.items())],
            "reference": None if self.reference is None else self._dump(self.reference),
            "reference_label": self.reference_label,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore; a check whose spec changed since the checkpoint starts over."""
        same = state.get("segment_rows") == self.segment_rows
        if state["spec"] != self.s.model_dump(mode="json") or not same:
            return
        self.open = {int(w): self._load(x) for w, x in state["open"]}
        self.closed = {int(w): self._load(x) for w, x in state["closed"]}
        ref = state["reference"]
        self.reference = None if ref is None else self._load(ref)
        self.reference_label = str(state["reference_label"])


def _stream(feature: str, population: str) -> str:
    """The alarm's stream: ``feature:NAME`` (``features`` for a multivariate check), with
    ``[segment]`` for a segment's test."""
    base = "features" if feature == ROW else f"feature:{feature}"
    return f"{base}[{population}]" if population else base


class ModelChecks:
    """Every window check of one model, fed the rows the brain emits; tracks the segments."""

    def __init__(self, model: str, settings: ModelSettings) -> None:
        self.model = model
        self.columns = check_columns(settings)
        self.segments = settings.segments
        self.checks = [
            WindowCheck(model, c, settings.features, settings.segments) for c in settings.checks
        ]
        self._cols = [[self.columns.index(n) for n in c.names] for c in self.checks]
        self.tracked: dict[int, str] = {}  # segment key -> label, the first max_segments seen
        self.overflow_rows = 0  # rows of segments beyond the cap (tested in the pool only)
        self.category_names: dict[int, str] = {}  # the first MAX_NAMES category names seen
        for c in self.checks:
            c.category_names = self.category_names

    def add(self, rows: Sample, labels: Mapping[int, str] | None = None) -> None:
        """Rows with values in ``columns`` order (the segment keys last, when segments are
        on); ``labels`` name the segment keys."""
        for key, name in (labels or {}).items():
            if len(self.category_names) >= MAX_NAMES:
                break
            self.category_names.setdefault(key, name)
        seg: list[str] | None = None
        if self.segments is not None:
            seg = self._segments(rows, labels or {})
            rows = Sample(rows.keys, rows.ts, rows.values[:, :-1])
        for check, cols in zip(self.checks, self._cols, strict=True):
            check.add(Sample(rows.keys, rows.ts, rows.values[:, cols]), seg)

    def _segments(self, rows: Sample, labels: Mapping[int, str]) -> list[str]:
        """Each row's tracked segment label ("" for none or overflow); new segments are
        tracked in (event time, id hash) order of their first row, up to the cap."""
        assert self.segments is not None
        keys = rows.values[:, -1]
        order = np.lexsort((rows.keys, rows.ts))
        seen = keys[order]
        present = ~np.isnan(seen)
        uniq, first = np.unique(seen[present], return_index=True)
        for key in uniq[np.argsort(first)].tolist():
            k = int(key)
            if k not in self.tracked and len(self.tracked) < self.segments.max_segments:
                self.tracked[k] = labels.get(k, f"#{k}")
        out = []
        for key in keys.tolist():
            label = "" if math.isnan(key) else self.tracked.get(int(key))
            if label is None:
                self.overflow_rows += 1
                label = ""
            out.append(label)
        return out

    def add_counts(self, ts: float, rejected: float, accepted: float) -> None:
        """One bucket's type-error counts (at its start time) for the ``type_errors`` checks."""
        for check in self.checks:
            if check.s.check == "type_errors":
                check.add_counts(ts, rejected, accepted)

    def set_champion(self, label: str, rows: Sample) -> list[int]:
        """The champion's training rows (values in ``columns`` order) as the reference of
        every ``champion`` check; the indices of the checks that switched."""
        switched = []
        for i, (check, cols) in enumerate(zip(self.checks, self._cols, strict=True)):
            if check.s.reference == "champion":
                part = Sample(rows.keys, rows.ts, rows.values[:, cols])
                if check.set_reference(label, part):
                    switched.append(i)
        return switched

    def advance(self, clock: float) -> list[DriftDetected]:
        out: list[DriftDetected] = []
        for c in self.checks:
            out += c.advance(clock)
        out.sort(key=lambda a: a.ts)
        return out

    def drain_evidence(self) -> dict[tuple[str, str, float], dict[str, Any]]:
        """Every check's explanations since the last drain (see ``WindowCheck``)."""
        out: dict[tuple[str, str, float], dict[str, Any]] = {}
        for c in self.checks:
            out.update(c.drain_evidence())
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "checks": [c.state_dict() for c in self.checks],
            "tracked": [[k, v] for k, v in sorted(self.tracked.items())],
            "overflow_rows": self.overflow_rows,
            "names": [[k, v] for k, v in sorted(self.category_names.items())],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for c, st in zip(self.checks, state.get("checks", []), strict=False):
            c.load_state_dict(st)
        self.tracked = {int(k): str(v) for k, v in state.get("tracked", [])}
        self.overflow_rows = int(state.get("overflow_rows", 0))
        self.category_names.clear()  # the same dict the checks hold
        self.category_names.update({int(k): str(v) for k, v in state.get("names", [])})
