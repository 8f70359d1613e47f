"""From a replay's summary to the gate's verdict, one line per check. Pure.

Each configured streaming detector and window check of each model is one line: it fails when
it raised a drift alarm after the reference (a warning does not fail), with the alarm's
statistic and threshold. An alarm of a detector not configured (none today) is a failing line
of its own. Dead letters — events driftd could not read or that break the model's schema — are
the data-quality line: their share of the events read, failing above ``max_dead_rate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from driftd.config import ModelSettings

PASS, FAIL = "pass", "fail"


@dataclass(frozen=True)
class CheckLine:
    """One check: what it is, its statistic against its threshold, and the verdict."""

    model: str
    check: str  # a detector's name, or window:<kind> for a window check, or dead_letters
    stream: str  # what it watches: error, feature:f0, a window check's features, events
    statistic: float | None
    threshold: float | None
    verdict: str
    alarms: int = 0
    first_alarm_ts: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class GateReport:
    """Every check's line; ``ok`` when none failed."""

    lines: tuple[CheckLine, ...]
    events: int
    reference_end_ts: float | None

    @property
    def ok(self) -> bool:
        return all(line.verdict == PASS for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "reference_end_ts": self.reference_end_ts,
            "failed": sum(1 for x in self.lines if x.verdict == FAIL),
            "checks": [asdict(x) for x in self.lines],
        }


def window_detector(check: str, test: str) -> str:
    """The detector name a window check's alarms carry (``driftd.daemon.checks``)."""
    return "window:" + (check if check != "drift" else f"drift:{test}")


Configured = tuple[str, str, str, str, float | None]


def _configured(models: Mapping[str, ModelSettings]) -> list[Configured]:
    """(model, detector, stream or "" for a window check's many, what it watches, its
    configured threshold: a detector's ``threshold`` param, a window check's ``alpha``)."""
    out: list[Configured] = []
    for name, ms in models.items():
        for d in ms.detectors:
            t = d.params.get("threshold")
            limit = float(t) if isinstance(t, int | float) and not isinstance(t, bool) else None
            out.append((name, d.detector, d.stream, d.stream, limit))
        for c in ms.checks:
            what = ",".join(c.features) if c.features else "every feature it applies to"
            out.append((name, window_detector(c.check, c.test), "", what, c.alpha))
    return out


def gate(
    alarms: Iterable[Mapping[str, Any]],
    models: Mapping[str, ModelSettings],
    events: int,
    dead_letters: Mapping[str, int],
    *,
    reference_end_ts: float | None = None,
    max_dead_rate: float = 0.0,
) -> GateReport:
    """The verdict on one run: ``alarms`` as ``DriftDetected`` dicts (Unix ``ts``), the
    models checked, the events read and the dead letters by reason. Alarms at or before
    ``reference_end_ts`` (the reference data's last event) are the reference's own: ignored."""
    drift = [
        a
        for a in alarms
        if a["kind"] == "drift"
        and a["model"] in models
        and (reference_end_ts is None or float(a["ts"]) > reference_end_ts)
    ]
    drift.sort(key=lambda a: float(a["ts"]))
    lines: list[CheckLine] = []
    used: set[int] = set()
    for model, detector, stream, what, limit in _configured(models):
        hits = [
            (i, a)
            for i, a in enumerate(drift)
            if a["model"] == model
            and a["detector"] == detector
            and (not stream or a["stream"] == stream)
        ]
        used.update(i for i, _ in hits)
        if not hits:
            lines.append(CheckLine(model, detector, what, None, limit, PASS, detail="no alarm"))
            continue
        first = hits[0][1]
        streams = sorted({a["stream"] for _, a in hits})
        lines.append(
            CheckLine(
                model,
                detector,
                what if stream else ",".join(streams),
                float(first["statistic"]),
                float(first["threshold"]),
                FAIL,
                len(hits),
                float(first["ts"]),
                f"drift on {', '.join(streams)}",
            )
        )
    for i, a in enumerate(drift):
        if i not in used:
            lines.append(
                CheckLine(a["model"], a["detector"], a["stream"], float(a["statistic"]),
                          float(a["threshold"]), FAIL, 1, float(a["ts"]), "drift")
            )  # fmt: skip
    total = sum(dead_letters.values())
    rate = total / events if events else 0.0
    why = ", ".join(f"{k} {n}" for k, n in sorted(dead_letters.items()) if n) or "none"
    lines.append(
        CheckLine("*", "dead_letters", "events", rate, max_dead_rate,
                  FAIL if rate > max_dead_rate else PASS, total, None, why)
    )  # fmt: skip
    return GateReport(tuple(lines), events, reference_end_ts)
