"""An incident's evidence as stored JSON and back: the explanation's ranked feature shifts,
the statistic over time and the performance windows, stored with the incident when its alarm
fired; ``build`` joins them with the incident into what the report renders."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from driftd.incidents.lifecycle import Incident
from driftd.incidents.types import (
    FeatureShift,
    Histogram,
    IncidentEvidence,
    PerformancePoint,
    SeriesPoint,
)


def _finite(x: float | None) -> float | None:
    """JSON has no NaN or infinity: they are stored as null."""
    return None if x is None or not math.isfinite(x) else float(x)


def shift_json(s: FeatureShift) -> dict[str, Any]:
    data = dataclasses.asdict(s)
    for k in ("effect", "lower", "upper", "p_value"):
        data[k] = _finite(data[k])
    if s.histogram is not None:
        data["histogram"] = {k: list(v) for k, v in dataclasses.asdict(s.histogram).items()}
    return data


def to_json(
    shifts: Sequence[FeatureShift] = (),
    statistic: Sequence[SeriesPoint] = (),
    performance: Sequence[PerformancePoint] = (),
    metric: str = "",
) -> dict[str, Any]:
    """The evidence as plain JSON data (non-finite numbers as null)."""
    return {
        "shifts": [shift_json(s) for s in shifts],
        "statistic": [[p.ts, _finite(p.value), _finite(p.threshold)] for p in statistic],
        "performance": [
            [p.ts, _finite(p.estimated), _finite(p.lower), _finite(p.upper), _finite(p.realised)]
            for p in performance
        ],
        "metric": metric,
    }


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _shift(d: Mapping[str, Any]) -> FeatureShift:
    h = d.get("histogram")
    return FeatureShift(
        feature=str(d["feature"]),
        kind=d["kind"],
        effect=_num(d["effect"]),
        lower=_num(d["lower"]),
        upper=_num(d["upper"]),
        confidence=float(d["confidence"]),
        effect_name=str(d["effect_name"]),
        p_value=_num(d["p_value"]),
        n_reference=int(d["n_reference"]),
        n_current=int(d["n_current"]),
        summary=str(d["summary"]),
        histogram=Histogram(h["edges"], h["labels"], h["reference"], h["current"]) if h else None,
    )


def _version(version: str) -> str:
    """``v3``; ``all versions`` for a window check's pooled stream (version ``*``)."""
    return "all versions" if version == "*" else f"v{version}"


def build(
    inc: Incident, stored: Mapping[str, Any] | None, links: Sequence[tuple[str, str]] = ()
) -> IncidentEvidence:
    """What the report shows about ``inc``: the incident with its stored evidence (if any)."""
    stored = stored or {}
    return IncidentEvidence(
        incident_id=inc.id,
        title=f"{inc.model} {_version(inc.version)}: {inc.stream}",
        model=inc.model,
        version=inc.version,
        stream=inc.stream,
        state=inc.state,
        opened_ts=inc.opened_ts,
        last_alarm_ts=inc.last_alarm_ts,
        alarms=inc.alarms,
        reference=inc.reference,
        detectors=tuple(inc.detectors),
        shifts=[_shift(d) for d in stored.get("shifts", [])],
        statistic=[SeriesPoint(t, _num(v), th) for t, v, th in stored.get("statistic", [])],
        performance=[
            PerformancePoint(t, _num(e), _num(lo), _num(hi), r)
            for t, e, lo, hi, r in stored.get("performance", [])
        ],
        performance_metric=str(stored.get("metric", "")),
        links=tuple(links),
    )
