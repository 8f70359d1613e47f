"""A stored verdict's reasons in words: what each line is tested against and what crossing its
bound means, e.g. "latency (canary vs champion p99, margin 10%): rollback test log e-value 4.54,
rolls back at 4.09 (not crossed)". Pure: the reason as stored and, when known, the SLO.
"""

from __future__ import annotations

import math
from typing import Any

from driftd.rollout.evidence import SLO


def _num(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.3g}"


def _quantile(q: float) -> str:
    return f"p{q * 100:g}"


def _margin(slo: SLO | None, rollback: bool, margin: float | None, ni: float | None) -> str:
    """ ", margin 10%" for the margin the check uses (rollback or non-inferiority)."""
    if slo is None:
        return ""
    m = margin if rollback else ni
    if m is None:
        return ""
    kind = "relative" if slo.margins == "relative" else "absolute"
    return f", {kind} margin {m:.0%}" if kind == "relative" else f", margin {m:g}"


def subject(name: str, check: str, slo: SLO | None) -> str:
    """What the line compares, in words (``name`` is the reason's SLO field)."""
    rb = check == "rollback"
    if name == "error_rate":
        m = _margin(slo, rb, slo.error_margin if slo else None, slo.error_ni if slo else None)
        return f"error rate (canary vs champion{m})"
    if name == "error_ceiling":
        c = f" {slo.error_ceiling:.2%}" if slo and slo.error_ceiling is not None else ""
        return f"error rate (canary vs ceiling{c})"
    if name == "quality":
        m = _margin(slo, rb, slo.quality_margin if slo else None, slo.quality_ni if slo else None)
        return f"quality (canary vs champion wrong-prediction rate{m})"
    latency_margin = (
        f", margin {slo.latency_margin:.0%}" if slo and slo.latency_margin is not None else ""
    )
    if name == "latency_relative":
        qs = "/".join(_quantile(q) for q in slo.latency_quantiles) if slo else "each quantile"
        return f"latency (canary vs champion at {qs}, combined{latency_margin})"
    if name.startswith("latency_q"):
        q = float(name.removeprefix("latency_q"))
        return f"latency (canary vs champion {_quantile(q)}{latency_margin})"
    if name == "latency_ceiling":
        if slo and slo.latency_ceiling_ms is not None:
            return (
                f"latency (canary {_quantile(slo.latency_quantile)} vs ceiling "
                f"{slo.latency_ceiling_ms:g} ms)"
            )
        return "latency (canary vs ceiling)"
    if name in ("canary", "champion"):
        return f"{name} traffic"
    if name == "drift":
        return "inputs (canary vs champion feature means)"
    if name == "duration":
        return "analysis time"
    return name.replace("_", " ")


def describe(reason: dict[str, Any], slo: SLO | None = None) -> str:
    """One stored reason (``Reason`` as a dict) as a line of words."""
    name, check = str(reason["slo"]), str(reason["check"])
    stat, bound, fired = reason.get("statistic"), reason.get("bound"), bool(reason["fired"])
    crossed = "crossed" if fired else "not crossed"
    what = subject(name, check, slo)
    sequential = reason.get("rule") == "driftd-sequential"
    if check == "interval":
        if sequential:
            return (
                f"{what}: always-valid interval of the rate ratio canary/champion "
                f"[{_num(stat)}, {_num(bound)}]"
            )
        return f"{what}: interval value {_num(stat)}, limit {_num(bound)} ({crossed})"
    if check == "halt":
        if name in ("canary", "champion"):
            return (
                f"{what}: no requests for {_num(stat)} s, halts after {_num(bound)} s ({crossed})"
            )
        if name == "drift":
            return f"{what}: p-value {_num(stat)}, halts below {_num(bound)} ({crossed})"
        if name == "duration":
            return f"{what}: ran {_num(stat)} s, halts undecided at {_num(bound)} s ({crossed})"
        return f"{what}: {_num(stat)}, halts at {_num(bound)} ({crossed})"
    if sequential and check == "rollback":
        return (
            f"{what}: rollback test log e-value {_num(stat)}, rolls back at {_num(bound)} "
            f"({crossed})"
        )
    if sequential and check == "promote":
        return (
            f"{what}: non-inferiority test log e-value {_num(stat)}, shown (promotable) at "
            f"{_num(bound)} ({crossed})"
        )
    verb = {"rollback": "rolls back at", "promote": "promotes at"}.get(check, "bound")
    return f"{what}: {check} count {_num(stat)}, {verb} {_num(bound)} ({crossed})"
