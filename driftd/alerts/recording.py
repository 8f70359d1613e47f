"""SLO recording rules: the share of bad predictions per model and version over each burn-rate
window (errors; answers slower than the model's latency threshold), windowed quality from the
labeled counters (accuracy; rmse for regression), the labeled-weighted lifetime quality the
dashboards show, and each configured model's objectives as ``driftd:slo_objective`` series, so
that a dashboard can compute the error budget left."""

from __future__ import annotations

from typing import Any

from driftd.alerts.leader import selector
from driftd.alerts.promql import any_of, cohorts, label, num
from driftd.config import Settings
from driftd.config.slo import ServiceSLOSettings

SHORT_WINDOWS = ("5m", "30m", "1h", "6h")  # evaluated every 30 s
LONG_WINDOWS = ("3d", "30d")  # the ticket alert's 3 d, and 30 d for the error budget panels
QUALITY_WINDOWS = ("5m", "30m", "1h", "6h")

ERRORS = "model_version:driftd_prediction_errors:ratio_rate"
SLOW = "model_version:driftd_prediction_latency_slow:ratio_rate"
ACCURACY = "model_version:driftd_accuracy:ratio_rate"
RMSE = "model_version:driftd_rmse:rate"
OBJECTIVE = "driftd:slo_objective"
QUALITY_RULE = "model_version_metric:driftd_model_quality:labeled_weighted"
BY = "model, version"


def _rate(metric: str, window: str, *matchers: str) -> str:
    return f"sum by ({BY}) (rate({metric}{selector(*matchers)}[{window}]))"


def errors_expr(window: str) -> str:
    """The share of predictions that are errors over ``window``."""
    return (
        f"{_rate('driftd_prediction_errors_total', window)}\n/\n"
        f"{_rate('driftd_predictions_total', window)}"
    )


def slow_expr(window: str, latency_s: float, matcher: str = "") -> str:
    """The share of predictions slower than ``latency_s`` (a histogram bucket) over ``window``."""
    fast = _rate(
        "driftd_prediction_latency_seconds_bucket", window, label("le", str(latency_s)), matcher
    )
    count = _rate("driftd_prediction_latency_seconds_count", window, matcher)
    return f"1 - (\n  {fast}\n  /\n  {count}\n)"


def accuracy_expr(window: str) -> str:
    """Correct labeled predictions over labeled predictions in ``window``."""
    return f"{_rate('driftd_correct_total', window)}\n/\n{_rate('driftd_labeled_total', window)}"


def rmse_expr(window: str) -> str:
    """The root of the mean squared error of labeled predictions in ``window`` (regression)."""
    return (
        f"sqrt(\n  {_rate('driftd_squared_error_total', window)}\n  /\n"
        f"  {_rate('driftd_labeled_total', window)}\n)"
    )


def quality_rule_expr(matchers: str = "") -> str:
    """The lifetime quality over every instance's joined rows: each instance exports the
    quality of its own partitions, weighted here by their labeled rows (accuracy:
    sum(correct) / sum(labeled); rmse: the root of the weighted mean square). Same expression
    as dashboards/build.py's."""

    def weighted(metric: str, power: str) -> str:
        return (
            "sum by (model, version, metric) ("
            f"driftd_model_quality{selector(metric, matchers)}{power} "
            f"* on (instance, job, partition, model, version) group_left () "
            f"driftd_labeled_total{selector(matchers)}) "
            "/ on (model, version) group_left () "
            f"sum by (model, version) (driftd_labeled_total{selector(matchers)})"
        )

    accuracy = weighted('metric!="rmse"', "")
    rmse = weighted('metric="rmse"', " ^ 2")
    return f"{accuracy} or sqrt({rmse})"


def _slow_rules(settings: Settings, windows: tuple[str, ...]) -> list[dict[str, Any]]:
    latency = {name: m.slo.latency_s for name, m in settings.models.items()}
    cs = cohorts(latency, ServiceSLOSettings().latency_s)
    return [
        {"record": f"{SLOW}{w}", "expr": any_of([slow_expr(w, c.value, c.matcher) for c in cs])}
        for w in windows
    ]


def short_window_rules(settings: Settings) -> list[dict[str, Any]]:
    """Ratios over the page windows (5m .. 6h) and windowed quality."""
    rules = [{"record": f"{ERRORS}{w}", "expr": errors_expr(w)} for w in SHORT_WINDOWS]
    rules += _slow_rules(settings, SHORT_WINDOWS)
    rules += [{"record": f"{ACCURACY}{w}", "expr": accuracy_expr(w)} for w in QUALITY_WINDOWS]
    rules += [{"record": f"{RMSE}{w}", "expr": rmse_expr(w)} for w in QUALITY_WINDOWS]
    rules.append({"record": QUALITY_RULE, "expr": quality_rule_expr()})
    return rules


def long_window_rules(settings: Settings) -> list[dict[str, Any]]:
    """Ratios over 3 d (the ticket alert) and 30 d (the error budget)."""
    rules = [{"record": f"{ERRORS}{w}", "expr": errors_expr(w)} for w in LONG_WINDOWS]
    return rules + _slow_rules(settings, LONG_WINDOWS)


def objective_rules(settings: Settings) -> list[dict[str, Any]]:
    """``driftd:slo_objective{model, slo}`` per configured model: the target share of good
    predictions (``le`` names the latency threshold). Unconfigured models have the defaults."""
    rules: list[dict[str, Any]] = []
    for name, model in sorted(settings.models.items()):
        slo = model.slo
        rules.append(
            {
                "record": OBJECTIVE,
                "expr": f"vector({num(slo.availability)})",
                "labels": {"model": name, "slo": "errors"},
            }
        )
        rules.append(
            {
                "record": OBJECTIVE,
                "expr": f"vector({num(slo.latency_target)})",
                "labels": {"model": name, "slo": "latency", "le": str(slo.latency_s)},
            }
        )
    return rules
