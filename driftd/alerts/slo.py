"""Per-model SLO alerts from each model's ``[models.NAME.slo]`` (unconfigured models get the
defaults): multiwindow, multi-burn-rate alerts (Google SRE workbook, ch. 5) on the error and
latency budgets, windowed quality loss, stalled labels or predictions, and incidents left open.

A burn rate of 1 spends the budget (1 - target) in exactly the SLO period (30 days). Each
alert needs its long window (the burn is real) and its short window (it is still going on), so
it resolves soon after the burn stops; there is no ``for``. Models that share a value share
one part of the rule's expression (see ``driftd.alerts.promql.cohorts``).
"""

from __future__ import annotations

from dataclasses import dataclass

from driftd.alerts.leader import selector
from driftd.alerts.promql import Cohort, any_of, cohorts, duration, label, num, per_cohort
from driftd.alerts.recording import ACCURACY, ERRORS, RMSE, SLOW
from driftd.alerts.rule import MODEL, Alert, Severity
from driftd.config import Settings
from driftd.config.slo import TRAFFIC_LOOKBACK_S, ServiceSLOSettings

DEFAULT = ServiceSLOSettings()


@dataclass(frozen=True)
class Burn:
    """One burn-rate alert: ``factor`` times the sustainable rate over both windows."""

    suffix: str
    factor: float
    long: str
    short: str
    severity: Severity


BURNS = (
    Burn("Fast", 14.4, "1h", "5m", "page"),  # 2 % of a 30 d budget in 1 h
    Burn("Slow", 6, "6h", "30m", "page"),  # 5 % in 6 h
    Burn("Steady", 1, "3d", "6h", "ticket"),  # 10 % in 3 d: the budget runs out in 30 d
)
VERSION = "{{ $labels.model }} {{ $labels.version }}"
MODEL_NAME = "{{ $labels.model }}"


def budget(target: float) -> float:
    """The error budget of a target share of good predictions (0.995 -> 0.005)."""
    return float(num(1 - target))


def _burn_expr(rule: str, burn: Burn, target: float, matcher: str) -> str:
    bound = f"({num(burn.factor)} * {num(budget(target))})"
    sel = selector(matcher)
    return f"{rule}{burn.long}{sel} > {bound}\nand\n{rule}{burn.short}{sel} > {bound}"


def _pct(x: float) -> str:
    return f"{num(x * 100)}%"


def error_burns(settings: Settings) -> list[Alert]:
    """DriftdErrorBudgetBurn{Fast,Slow,Steady}: each model's availability target."""
    cs = cohorts({n: m.slo.availability for n, m in settings.models.items()}, DEFAULT.availability)
    objective = per_cohort(cs, _pct)
    return [
        Alert(
            f"DriftdErrorBudgetBurn{b.suffix}",
            any_of([_burn_expr(ERRORS, b, c.value, c.matcher) for c in cs]),
            b.severity,
            f"{VERSION} burns its error budget at over {num(b.factor)}x ({b.long} and {b.short})",
            f"{{{{ $value | humanizePercentage }}}} of the predictions of {VERSION} over "
            f"{b.long} were errors, and still are over {b.short}: {num(b.factor)}x the rate "
            f"that spends the 30-day error budget in 30 days (objective: {objective} of "
            "predictions without error).",
            MODEL,
            per_model=True,
            labels={"slo": "errors"},
        )
        for b in BURNS
    ]


def latency_burns(settings: Settings) -> list[Alert]:
    """DriftdLatencyBudgetBurn{Fast,Slow,Steady}: each model's latency threshold and target."""
    targets = {n: (m.slo.latency_s, m.slo.latency_target) for n, m in settings.models.items()}
    cs = cohorts(targets, (DEFAULT.latency_s, DEFAULT.latency_target))
    objective = per_cohort(cs, lambda v: f"{_pct(v[1])} within {num(v[0])} s")
    return [
        Alert(
            f"DriftdLatencyBudgetBurn{b.suffix}",
            any_of([_burn_expr(SLOW, b, c.value[1], c.matcher) for c in cs]),
            b.severity,
            f"{VERSION} burns its latency budget at over {num(b.factor)}x ({b.long} and {b.short})",
            f"{{{{ $value | humanizePercentage }}}} of the predictions of {VERSION} over "
            f"{b.long} were slower than the latency objective, and still are over {b.short}: "
            f"{num(b.factor)}x the rate that spends the 30-day budget in 30 days (objective: "
            f"{objective}).",
            MODEL,
            per_model=True,
            labels={"slo": "latency"},
        )
        for b in BURNS
    ]


def quality(settings: Settings) -> list[Alert]:
    """DriftdQualityDegraded: accuracy over 1 h below 6 h by ``quality_drop`` (classifiers),
    or rmse over 1 h above 6 h by ``rmse_rise`` (regression)."""
    models = settings.models.items()
    drops = {n: None if m.task == "regression" else m.slo.quality_drop for n, m in models}
    rises = {n: m.slo.rmse_rise if m.task == "regression" else None for n, m in models}
    acc = cohorts(drops, DEFAULT.quality_drop)
    rmse = cohorts(rises, DEFAULT.rmse_rise)
    acc_parts = [
        f"(\n  {ACCURACY}6h{selector(c.matcher)}\n  -\n  {ACCURACY}1h{selector(c.matcher)}\n)"
        f" > {num(c.value)}"
        for c in acc
    ]
    rmse_parts = [
        f"{RMSE}1h{selector(c.matcher)}\n>\n{num(1 + c.value)} * {RMSE}6h{selector(c.matcher)}"
        for c in rmse
    ]
    return [
        Alert(
            "DriftdQualityDegraded",
            any_of(acc_parts),
            "ticket",
            f"{VERSION} accuracy over 1h fell more than allowed below its 6h accuracy",
            f"The accuracy of the labeled predictions of {VERSION} over the last hour has been "
            f"more than {per_cohort(acc, num)} below its accuracy over 6 hours for 15 minutes.",
            MODEL,
            per_model=True,
            for_="15m",
            labels={"slo": "quality", "metric": "accuracy"},
        ),
        Alert(
            "DriftdQualityDegraded",
            any_of(rmse_parts),
            "ticket",
            f"{VERSION} rmse over 1h rose more than allowed above its 6h rmse",
            f"The rmse of the labeled predictions of {VERSION} over the last hour has been more "
            f"than {per_cohort(rmse, _pct)} above its rmse over 6 hours for 15 minutes.",
            MODEL,
            per_model=True,
            for_="15m",
            labels={"slo": "quality", "metric": "rmse"},
        ),
    ]


def _stalls(settings: Settings, key: str) -> list[Cohort[int]]:
    """Cohorts of a stall limit; a model whose limit is 0 is left out (no alert)."""
    values = {n: getattr(m.slo, key) or None for n, m in settings.models.items()}
    return cohorts(values, getattr(DEFAULT, key))


def labels_stalled(settings: Settings) -> Alert:
    """DriftdLabelsStalled: predictions arrive but no label for labels_stalled_s."""
    cs = _stalls(settings, "labels_stalled_s")
    parts = []
    for c in cs:
        w = duration(c.value)
        labels = selector(c.matcher, label("outcome", "labels"))
        parts.append(
            f"sum by (model) (increase(driftd_predictions_total{selector(c.matcher)}[{w}])) > 0"
            f"\nunless\nsum by (model) (increase(driftd_join_events_total{labels}[{w}])) > 0"
        )
    return Alert(
        "DriftdLabelsStalled",
        any_of(parts),
        "ticket",
        f"no labels for {MODEL_NAME} while its predictions arrive",
        f"driftd read predictions of {MODEL_NAME} but no label in the last "
        f"{per_cohort(cs, duration)}: quality SLOs, performance alarms and retraining are "
        "blind until labels flow again.",
        MODEL,
        per_model=True,
    )


def predictions_stalled(settings: Settings) -> Alert:
    """DriftdPredictionsStalled: a model with traffic in the last day gets none."""
    lookback = duration(TRAFFIC_LOOKBACK_S)
    cs = _stalls(settings, "predictions_stalled_s")
    parts = [
        f"sum by (model) (increase(driftd_predictions_total{selector(c.matcher)}[{lookback}])) "
        "> 0\nunless\n"
        f"sum by (model) (increase(driftd_predictions_total{selector(c.matcher)}"
        f"[{duration(c.value)}])) > 0"
        for c in cs
    ]
    return Alert(
        "DriftdPredictionsStalled",
        any_of(parts),
        "page",
        f"no predictions of {MODEL_NAME} arrive",
        f"{MODEL_NAME} had predictions in the last {lookback} but none in the last "
        f"{per_cohort(cs, duration)}: its model server, the predictions topic or driftd's "
        "consumer has stopped.",
        MODEL,
        per_model=True,
    )


def incident_open(settings: Settings) -> Alert:
    """DriftdIncidentOpenTooLong: the oldest unresolved incident is older than incident_open_s."""
    cs = _stalls(settings, "incident_open_s")
    metric = "driftd_incident_open_since_timestamp_seconds"
    parts = [f"time() - max by (model) ({metric}{selector(c.matcher)}) > {c.value}" for c in cs]
    return Alert(
        "DriftdIncidentOpenTooLong",
        any_of(parts),
        "ticket",
        f"an incident of {MODEL_NAME} is unresolved for {{{{ $value | humanizeDuration }}}}",
        f"The oldest unresolved incident of {MODEL_NAME} opened "
        f"{{{{ $value | humanizeDuration }}}} ago (limit {per_cohort(cs, duration)}): "
        "acknowledge it, act, and resolve it.",
        MODEL,
        per_model=True,
    )


def slo_alerts(settings: Settings) -> list[Alert]:
    """The burn-rate and quality alerts."""
    return error_burns(settings) + latency_burns(settings) + quality(settings)


def model_alerts(settings: Settings) -> list[Alert]:
    """The per-model stall and incident alerts."""
    return [labels_stalled(settings), predictions_stalled(settings), incident_open(settings)]
