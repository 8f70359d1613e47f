"""Generate driftd's Grafana dashboards (``dashboards/grafana/*.json``) and their query list.

The dashboards are code: this script builds them with grafana-foundation-sdk and writes one JSON
file per dashboard, plus ``dashboards/queries.json`` listing every PromQL expression a panel or
annotation runs, with the template variables replaced by values that match everything, so a test
can evaluate each one against Prometheus's HTTP API.

    python dashboards/build.py           # regenerate the files
    python dashboards/build.py --check   # exit 1, naming the file, if the committed ones differ

Every selector on a template variable is a regex matcher (``model=~"$model"``) so that the
substituted ``.+`` matches. Only metric names from driftd's recorder contract are used (the test
in ``tests/dashboards`` enforces it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions, VizLegendOptions
from grafana_foundation_sdk.builders.dashboard import (
    AnnotationQuery,
    Dashboard,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    LegendDisplayMode,
    LegendPlacement,
)
from grafana_foundation_sdk.models.dashboard import AnnotationQuery as AnnotationModel
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    DataTransformerConfig,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

HERE = Path(__file__).resolve().parent
GRAFANA_DIR = HERE / "grafana"
QUERIES_FILE = HERE / "queries.json"

# The provisioned datasource (dashboards/provisioning/datasources/prometheus.yml) has this uid.
DS = DataSourceRef(type_val="prometheus", uid="prometheus")
RATE = "$__rate_interval"
# What each template variable becomes in queries.json: a regex that matches every value.
SUBSTITUTIONS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "${model}": ".+",
    "$model": ".+",
    "${version}": ".+",
    "$version": ".+",
}
TAGS = ["driftd", "generated"]
VERDICTS = {
    "0": ("continue", "blue"),
    "1": ("promote", "green"),
    "-1": ("rollback", "red"),
    "2": ("halt", "orange"),
}


class Ids:
    """Panel ids, unique within a dashboard, in build order."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


def query(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False) -> Dataquery:
    q = Dataquery().expr(expr).ref_id(ref).datasource(DS)
    if legend:
        q = q.legend_format(legend)
    return q.instant().format(PromQueryFormat.TABLE) if instant else q.range()


P = TypeVar("P", timeseries.Panel, stat.Panel)


def _targets(panel: P, queries: Iterable[Dataquery]) -> P:
    for q in queries:
        panel = panel.with_target(q)
    return panel


def ts(
    ids: Ids,
    title: str,
    *queries: Dataquery,
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    description: str = "",
    min_val: float | None = 0,
) -> timeseries.Panel:
    p = (
        timeseries.Panel()
        .id(ids())
        .title(title)
        .datasource(DS)
        .unit(unit)
        .span(w)
        .height(h)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            VizLegendOptions()
            .show_legend(True)
            .display_mode(LegendDisplayMode.TABLE)
            .placement(LegendPlacement.BOTTOM)
            .calcs(["lastNotNull", "max"])
        )
    )
    if min_val is not None:
        p = p.min(min_val)
    if description:
        p = p.description(description)
    return _targets(p, queries)


def stat_panel(
    ids: Ids,
    title: str,
    *queries: Dataquery,
    unit: str = "short",
    w: int = 6,
    h: int = 5,
    mappings: list[Any] | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
    description: str = "",
) -> stat.Panel:
    p = (
        stat.Panel()
        .id(ids())
        .title(title)
        .datasource(DS)
        .unit(unit)
        .span(w)
        .height(h)
        .graph_mode(BigValueGraphMode.AREA)
        .color_mode(BigValueColorMode.VALUE)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if mappings:
        p = p.mappings(mappings)
    if thresholds:
        p = p.thresholds(_thresholds(thresholds))
    if description:
        p = p.description(description)
    return _targets(p, queries)


def _thresholds(steps: list[tuple[float | None, str]]) -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=v, color=c) for v, c in steps])
    )


def table_panel(
    ids: Ids,
    title: str,
    q: Dataquery,
    *,
    hide: list[str],
    order: list[str],
    w: int = 24,
    h: int = 8,
    description: str = "",
) -> table.Panel:
    organize = DataTransformerConfig(
        id_val="organize",
        options={
            "excludeByName": dict.fromkeys(hide, True),
            "indexByName": {name: i for i, name in enumerate(order)},
            "renameByName": {},
        },
    )
    p = (
        table.Panel()
        .id(ids())
        .title(title)
        .datasource(DS)
        .span(w)
        .height(h)
        .with_transformation(organize)
        .with_target(q)
    )
    if description:
        p = p.description(description)
    return p


def verdict_mappings() -> list[Any]:
    return [
        ValueMap(
            options={
                k: ValueMappingResult(text=text, color=color, index=i)
                for i, (k, (text, color)) in enumerate(VERDICTS.items())
            }
        )
    ]


def release_annotations(selector: str = "") -> list[Builder[AnnotationModel]]:
    """Promotions and rollbacks as annotations (one marker per model per change)."""
    out: list[Builder[AnnotationModel]] = []
    for name, metric, color in (
        ("Promotions", "driftd_promotions_total", "green"),
        ("Rollbacks", "driftd_rollbacks_total", "red"),
    ):
        out.append(
            AnnotationQuery()
            .name(name)
            .datasource(DS)
            .enable(True)
            .hide(False)
            .icon_color(color)
            .expr(f"sum by (model) (changes({metric}{selector}[1m])) > 0")
        )
    return out


def model_variable(*, include_all: bool) -> QueryVariable:
    v = (
        QueryVariable("model")
        .label("Model")
        .datasource(DS)
        .query("label_values(driftd_model_version_info, model)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(include_all)
        .include_all(include_all)
    )
    if include_all:
        v = v.all_value(".*").current(VariableOption(selected=True, text="All", value="$__all"))
    return v


def version_variable() -> QueryVariable:
    return (
        QueryVariable("version")
        .label("Version")
        .datasource(DS)
        .query('label_values(driftd_model_version_info{model=~"$model"}, version)')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def _base(uid: str, title: str, description: str) -> Dashboard:
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .refresh("10s")
        .time("now-1h", "now")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .annotations(release_annotations())
    )


def overview() -> Dashboard:
    ids = Ids()
    m = '{model=~"$model"}'
    d = _base("driftd-overview", "driftd / Overview", "All models monitored by driftd.")
    d = d.with_variable(model_variable(include_all=True))
    d = d.with_row(Row("Pipeline").id(ids()))
    d = d.with_panel(
        ts(
            ids,
            "Events per second",
            query(f"sum(rate(driftd_events_consumed_total[{RATE}]))", "consumed", "A"),
            query(f"sum(rate(driftd_events_decoded_total[{RATE}]))", "decoded", "B"),
            unit="ops",
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Dead letters by reason",
            query(
                f"sum by (reason) (rate(driftd_events_dead_lettered_total[{RATE}]))", "{{reason}}"
            ),
            unit="ops",
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Ignored events by reason",
            query(f"sum by (reason) (rate(driftd_events_ignored_total[{RATE}]))", "{{reason}}"),
            unit="ops",
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Join outcomes",
            query(
                f"sum by (model, outcome) (rate(driftd_join_events_total{m}[{RATE}]))",
                "{{model}} {{outcome}}",
            ),
            unit="ops",
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Join pending",
            query(f"sum by (model) (driftd_join_pending{m})", "{{model}} predictions", "A"),
            query(f"sum by (model) (driftd_join_pending_labels{m})", "{{model}} labels", "B"),
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Consumer lag",
            query("sum by (stream) (driftd_consumer_lag)", "{{stream}}"),
            w=8,
            description="Events not yet read, per topic partition or file.",
        )
    )
    d = d.with_panel(
        ts(ids, "Checkpoint age", query("max(driftd_checkpoint_age_seconds)", "age"), unit="s", w=8)
    )
    d = d.with_panel(
        ts(
            ids,
            "Batch and checkpoint duration (p95)",
            query(
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(driftd_batch_processing_seconds_bucket[{RATE}])))",
                "batch p95",
                "A",
            ),
            query(
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(driftd_checkpoint_duration_seconds_bucket[{RATE}])))",
                "checkpoint p95",
                "B",
            ),
            unit="s",
            w=8,
        )
    )
    d = d.with_panel(
        stat_panel(
            ids,
            "Checkpoint failures (range)",
            query("sum(increase(driftd_checkpoint_failures_total[$__range]))", "failures"),
            w=8,
            h=8,
            thresholds=[(None, "green"), (1, "red")],
        )
    )
    d = d.with_row(Row("Models").id(ids()))
    d = d.with_panel(
        ts(
            ids,
            "Predictions per second",
            query(f"sum by (model) (rate(driftd_predictions_total{m}[{RATE}]))", "{{model}}"),
            unit="ops",
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Prediction error ratio",
            query(
                f"sum by (model) (rate(driftd_prediction_errors_total{m}[{RATE}])) / "
                f"sum by (model) (rate(driftd_predictions_total{m}[{RATE}]))",
                "{{model}}",
            ),
            unit="percentunit",
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Drift alarms",
            query(
                f"sum by (model, kind) (increase(driftd_drift_alarms_total{m}[{RATE}]))",
                "{{model}} {{kind}}",
            ),
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Retrain jobs by state",
            query(f"sum by (model, state) (driftd_retrain_jobs{m})", "{{model}} {{state}}"),
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Retrain job duration (p90)",
            query(
                "histogram_quantile(0.9, sum by (model, outcome, le) "
                f"(rate(driftd_retrain_job_duration_seconds_bucket{m}[{RATE}])))",
                "{{model}} {{outcome}}",
            ),
            unit="s",
            w=8,
        )
    )
    d = d.with_panel(
        stat_panel(
            ids,
            "Canary verdict",
            query(f"driftd_canary_verdict{m}", "{{model}}"),
            w=8,
            h=8,
            mappings=verdict_mappings(),
        )
    )
    return d


def model_page() -> Dashboard:
    ids = Ids()
    mv = '{model=~"$model", version=~"$version"}'
    d = _base(
        "driftd-model",
        "driftd / Model",
        "One model: drift per feature and detector, quality, latency, errors and versions.",
    )
    d = d.annotations(release_annotations('{model=~"$model"}'))
    d = d.with_variable(model_variable(include_all=False)).with_variable(version_variable())
    d = d.with_row(Row("Drift").id(ids()))
    d = d.with_panel(
        ts(
            ids,
            "Drift statistic vs threshold",
            query(f"driftd_drift_statistic{mv}", "{{version}} {{stream}} {{detector}}", "A"),
            query(
                f"driftd_drift_threshold{mv}", "threshold {{version}} {{stream}} {{detector}}", "B"
            ),
            w=16,
            min_val=None,
            description="Each detector's current statistic per stream (feature:NAME, error, "
            "score, latency) and the threshold it alarms at.",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Drift alarms",
            query(
                f"sum by (version, stream, detector, kind) "
                f"(increase(driftd_drift_alarms_total{mv}[{RATE}]))",
                "{{version}} {{stream}} {{detector}} {{kind}}",
            ),
            w=8,
        )
    )
    d = d.with_row(Row("Quality").id(ids()))
    d = d.with_panel(
        ts(
            ids,
            "Quality per version",
            query(f"driftd_model_quality{mv}", "{{version}} {{metric}}"),
            w=12,
            min_val=None,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Accuracy of joined rows per version",
            query(
                f"sum by (version) (rate(driftd_correct_total{mv}[{RATE}])) / "
                f"sum by (version) (rate(driftd_labeled_total{mv}[{RATE}]))",
                "{{version}}",
            ),
            unit="percentunit",
            w=12,
        )
    )
    d = d.with_row(Row("Serving").id(ids()))
    lat = f"rate(driftd_prediction_latency_seconds_bucket{mv}[{RATE}])"
    d = d.with_panel(
        ts(
            ids,
            "Latency p50 / p95 / p99 per version",
            query(f"histogram_quantile(0.5, sum by (version, le) ({lat}))", "p50 {{version}}", "A"),
            query(
                f"histogram_quantile(0.95, sum by (version, le) ({lat}))", "p95 {{version}}", "B"
            ),
            query(
                f"histogram_quantile(0.99, sum by (version, le) ({lat}))", "p99 {{version}}", "C"
            ),
            unit="s",
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Error ratio per version",
            query(
                f"sum by (version) (rate(driftd_prediction_errors_total{mv}[{RATE}])) / "
                f"sum by (version) (rate(driftd_predictions_total{mv}[{RATE}]))",
                "{{version}}",
            ),
            unit="percentunit",
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Predictions and labels per second",
            query(
                f"sum by (version) (rate(driftd_predictions_total{mv}[{RATE}]))",
                "predictions {{version}}",
                "A",
            ),
            query(
                f"sum by (version) (rate(driftd_labeled_total{mv}[{RATE}]))",
                "labeled {{version}}",
                "B",
            ),
            unit="ops",
            w=8,
        )
    )
    d = d.with_row(Row("Versions").id(ids()))
    d = d.with_panel(
        table_panel(
            ids,
            "Versions",
            query('driftd_model_version_info{model=~"$model"}', ref="A", instant=True),
            hide=["Time", "Value", "__name__", "instance", "job", "model"],
            order=["version", "stage", "alias", "parent", "run", "data_version", "code_version"],
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Traffic weight per version",
            query('driftd_canary_weight{model=~"$model"}', "{{version}}"),
            unit="percentunit",
            w=12,
            h=6,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Retrain jobs by state",
            query('sum by (state) (driftd_retrain_jobs{model=~"$model"})', "{{state}}"),
            w=12,
            h=6,
        )
    )
    return d


def canary_page() -> Dashboard:
    ids = Ids()
    m = '{model=~"$model"}'
    d = _base(
        "driftd-canary",
        "driftd / Canary",
        "Canary rollout: traffic weights, the always-valid evidence per SLO, the verdict.",
    )
    d = d.annotations(release_annotations(m))
    d = d.with_variable(model_variable(include_all=False))
    d = d.with_panel(
        stat_panel(
            ids,
            "Verdict",
            query(f"driftd_canary_verdict{m}", "{{model}}"),
            w=6,
            h=6,
            mappings=verdict_mappings(),
            description="0 continue, 1 promote, -1 rollback, 2 halt.",
        )
    )
    d = d.with_panel(
        stat_panel(
            ids,
            "Promotions (range)",
            query(f"sum(increase(driftd_promotions_total{m}[$__range]))", "promotions"),
            w=6,
            h=6,
            thresholds=[(None, "green")],
        )
    )
    d = d.with_panel(
        stat_panel(
            ids,
            "Rollbacks (range)",
            query(f"sum(increase(driftd_rollbacks_total{m}[$__range]))", "rollbacks"),
            w=6,
            h=6,
            thresholds=[(None, "green"), (1, "red")],
        )
    )
    d = d.with_panel(
        stat_panel(
            ids,
            "Traffic share now",
            query(f"driftd_canary_weight{m}", "{{version}}"),
            unit="percentunit",
            w=6,
            h=6,
            description="Each version's current share of traffic (1 = all of it).",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Traffic weight per version",
            query(f"driftd_canary_weight{m}", "{{version}}"),
            unit="percentunit",
            w=12,
        )
    )
    d = d.with_panel(
        statetimeline.Panel()
        .id(ids())
        .title("Verdict over time")
        .datasource(DS)
        .span(12)
        .height(8)
        .mappings(verdict_mappings())
        .with_target(query(f"driftd_canary_verdict{m}", "{{model}}"))
    )
    d = d.with_row(Row("Evidence (canary - champion, always-valid bounds)").id(ids()))
    for title, slo in (("errors", "error.*"), ("latency", "latency.*"), ("quality", "quality")):
        d = d.with_panel(
            ts(
                ids,
                f"Evidence: {title}",
                query(
                    f'driftd_canary_evidence{{model=~"$model", slo=~"{slo}", bound="lower"}}',
                    "{{slo}}: canary worse",
                    "A",
                ),
                query(
                    f'driftd_canary_evidence{{model=~"$model", slo=~"{slo}", bound="upper"}}',
                    "{{slo}}: canary not worse",
                    "B",
                ),
                unit="short",
                w=8,
                min_val=None,
                description="Log e-value of each always-valid test of canary vs champion; the "
                "canary is rolled back (canary worse) or may be promoted (canary not worse) "
                "once it crosses log(1/alpha).",
            )
        )
    d = d.with_row(Row("Versions in the rollout").id(ids()))
    d = d.with_panel(
        ts(
            ids,
            "Error ratio per version",
            query(
                f"sum by (version) (rate(driftd_prediction_errors_total{m}[{RATE}])) / "
                f"sum by (version) (rate(driftd_predictions_total{m}[{RATE}]))",
                "{{version}}",
            ),
            unit="percentunit",
            w=12,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Latency p99 per version",
            query(
                "histogram_quantile(0.99, sum by (version, le) "
                f"(rate(driftd_prediction_latency_seconds_bucket{m}[{RATE}])))",
                "{{version}}",
            ),
            unit="s",
            w=12,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Promotions and rollbacks",
            query(
                f"sum by (model) (increase(driftd_promotions_total{m}[{RATE}]))",
                "promotions {{model}}",
                "A",
            ),
            query(
                f"sum by (model) (increase(driftd_rollbacks_total{m}[{RATE}]))",
                "rollbacks {{model}}",
                "B",
            ),
            w=24,
            h=6,
        )
    )
    return d


def lineage() -> Dashboard:
    ids = Ids()
    d = _base(
        "driftd-lineage",
        "driftd / Lineage",
        "Every registered version with its stage, alias, training run, data and code versions "
        "and parent, from driftd_model_version_info.",
    )
    d = d.with_variable(model_variable(include_all=True))
    d = d.with_panel(
        table_panel(
            ids,
            "Lineage",
            query('driftd_model_version_info{model=~"$model"}', ref="A", instant=True),
            hide=["Time", "Value", "__name__", "instance", "job"],
            order=[
                "model",
                "version",
                "stage",
                "alias",
                "parent",
                "run",
                "data_version",
                "code_version",
            ],
            h=16,
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Versions per stage",
            query(
                'count by (model, stage) (driftd_model_version_info{model=~"$model"})',
                "{{model}} {{stage}}",
            ),
            w=24,
            h=8,
        )
    )
    return d


DASHBOARDS = {
    "overview.json": overview,
    "model.json": model_page,
    "canary.json": canary_page,
    "lineage.json": lineage,
}


def encode(builder: Builder[Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(JSONEncoder().encode(builder.build()))
    return data


def dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def iter_panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for p in panels:
        yield p
        yield from iter_panels(p.get("panels") or [])


def substitute(expr: str) -> str:
    for var, value in SUBSTITUTIONS.items():
        expr = expr.replace(var, value)
    if re.search(r"\$\w", expr):
        raise ValueError(f"unsubstituted template variable in {expr!r}")
    return expr


def collect_queries(dashboards: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for fname, dash in dashboards.items():
        for p in iter_panels(dash.get("panels") or []):
            for t in p.get("targets") or []:
                out.append(
                    {
                        "dashboard": dash["uid"],
                        "file": f"grafana/{fname}",
                        "kind": "panel",
                        # A live loop returns data for every panel query (the e2e test).
                        "expect_data": True,
                        "panel_id": p["id"],
                        "panel": p["title"],
                        "ref_id": t["refId"],
                        "instant": bool(t.get("instant")),
                        "expr": t["expr"],
                        "query": substitute(t["expr"]),
                    }
                )
        for a in (dash.get("annotations") or {}).get("list") or []:
            if "expr" in a:
                out.append(
                    {
                        "dashboard": dash["uid"],
                        "file": f"grafana/{fname}",
                        "kind": "annotation",
                        # Only returns data around a promotion or rollback.
                        "expect_data": False,
                        "panel_id": None,
                        "panel": a["name"],
                        "ref_id": None,
                        "instant": False,
                        "expr": a["expr"],
                        "query": substitute(a["expr"]),
                    }
                )
    return out


def render() -> dict[str, str]:
    """File name (relative to dashboards/) -> content."""
    dashboards = {name: encode(fn()) for name, fn in DASHBOARDS.items()}
    files = {f"grafana/{name}": dump(data) for name, data in dashboards.items()}
    files["queries.json"] = dump(
        {
            "_comment": "Generated by dashboards/build.py; do not edit. Template variables are "
            "substituted by values matching everything.",
            "substitutions": SUBSTITUTIONS,
            "queries": collect_queries(dashboards),
        }
    )
    return files


def write(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def check(files: dict[str, str]) -> list[str]:
    """The committed files that are missing, differ, or are not generated any more."""
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp), files)
        stale = []
        for rel in sorted(files):
            committed = HERE / rel
            fresh = (Path(tmp) / rel).read_text(encoding="utf-8")
            if not committed.exists() or committed.read_text(encoding="utf-8") != fresh:
                stale.append(rel)
    for extra in sorted(GRAFANA_DIR.glob("*.json")):
        rel = f"grafana/{extra.name}"
        if rel not in files:
            stale.append(rel)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail if the committed files are not current"
    )
    args = parser.parse_args(argv)
    files = render()
    if args.check:
        stale = check(files)
        for rel in stale:
            msg = f"dashboards/{rel} is not current; run: python dashboards/build.py"
            print(msg, file=sys.stderr)  # noqa: T201
        if stale:
            return 1
        print(f"dashboards: {len(files)} generated files are current")  # noqa: T201
        return 0
    write(HERE, files)
    for rel in sorted(files):
        print(f"wrote dashboards/{rel}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
