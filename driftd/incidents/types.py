"""What an incident's explanation and report are made of: plain, frozen data, no I/O.

``explain`` produces ``FeatureShift`` rows from a reference and a current sample; ``report``
renders an ``IncidentEvidence`` into a self-contained HTML page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class Histogram:
    """A feature's distribution, ready to plot: numeric bins (``edges`` has one more entry
    than the fractions) or categories (``labels``, ``edges`` empty); fractions sum to 1."""

    edges: Sequence[float]
    labels: Sequence[str]
    reference: Sequence[float]  # fraction of the reference in each bin or category
    current: Sequence[float]  # fraction of the current window in each bin or category


@dataclass(frozen=True, slots=True)
class FeatureShift:
    """How far one feature moved between the reference and the current window.

    ``effect`` is a scale-free effect size (numeric: Wasserstein-1 distance over the
    reference's standard deviation; categorical: total variation distance), with a
    ``confidence`` interval [``lower``, ``upper``]; ``p_value`` is the two-sample test's."""

    feature: str
    kind: Literal["numeric", "categorical"]
    effect: float
    lower: float
    upper: float
    confidence: float
    effect_name: str  # e.g. "wasserstein / sd", "total variation"
    p_value: float
    n_reference: int
    n_current: int
    summary: str  # one line for people: "mean 10.2 -> 13.9 (+36 %)", "'eu' 40 % -> 12 %"
    histogram: Histogram | None = None


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One point of a detector's statistic over event time, with its alarm threshold."""

    ts: float
    value: float
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class PerformancePoint:
    """One window of estimated performance (with its band) and the realised value once the
    labels are in (None before)."""

    ts: float
    estimated: float
    lower: float
    upper: float
    realised: float | None = None


@dataclass(frozen=True, slots=True)
class IncidentEvidence:
    """Everything a report shows about one incident."""

    incident_id: str
    title: str  # "fraud v3: drift on feature:amount"
    model: str
    version: str
    stream: str
    state: str  # open, acknowledged, resolved
    opened_ts: float
    last_alarm_ts: float
    alarms: int
    reference: str  # what the current window was compared against
    detectors: Sequence[str] = ()
    shifts: Sequence[FeatureShift] = ()  # ranked by the interval's lower bound, largest first
    statistic: Sequence[SeriesPoint] = ()
    performance: Sequence[PerformancePoint] = ()
    performance_metric: str = ""
    links: Sequence[tuple[str, str]] = field(default=())  # (label, URL): API, Grafana
