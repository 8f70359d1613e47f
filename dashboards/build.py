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

Several driftd instances are scraped as one brain (one job, one target per instance):

* partition series (events, joins, SLIs, pending joins...) come from every instance for the
  partitions it holds, so panels ``sum`` them by model/version/reason, never by instance;
* registry series (versions, weights, promotions, rollbacks, retrain jobs) are the same on every
  instance, so panels take their ``max`` (one copy) instead of summing N copies;
* decision series (alarms, drift statistics, canary verdicts and evidence, the event clock) are
  read through the ``driftd:leader:*`` recording rules of ``prometheus/rules.yml``: the samples of
  the instance whose ``driftd_leader`` is 1, without the instance label (continuous across a
  failover; a previous leader's lingering series is dropped). ``LEADER_RULES``
  (``driftd.alerts.leader``) is the source of their expressions; a test checks that rules.yml
  records exactly these.

In ``queries.json`` the recording rules are inlined (``query``), so a Prometheus that does not
load driftd's rules (the end-to-end test's) answers every query the way the rules would.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    VizLegendOptions,
)
from grafana_foundation_sdk.builders.dashboard import (
    AnnotationQuery,
    Dashboard,
    DashboardLink,
    DatasourceVariable,
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
    BigValueTextMode,
    GraphTresholdsStyleMode,
    LegendDisplayMode,
    LegendPlacement,
)
from grafana_foundation_sdk.models.dashboard import AnnotationQuery as AnnotationModel
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
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

# Decision series, exported by the leader only: recording rule -> raw family (shared with the
# rules generator).
from driftd.alerts.leader import LEADER_RULES, leader_rule_expr, selector
from driftd.alerts.recording import QUALITY_RULE, quality_rule_expr

HERE = Path(__file__).resolve().parent
GRAFANA_DIR = HERE / "grafana"
QUERIES_FILE = HERE / "queries.json"

# Every panel, annotation and variable reads the Prometheus chosen in the ${datasource} variable
# (the default datasource unless picked): no datasource uid is written into a dashboard.
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
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
    "${feature}": ".+",
    "$feature": ".+",
}
TAGS = ["driftd", "generated"]

# The SLOs of prometheus/rules.yml: the share of bad predictions, per model and version, is
# recorded over these windows; the objective of a model comes from its driftd:slo_objective
# series (rules generated from the configuration) or, without one, from the default.
SLO_WINDOWS = ("5m", "30m", "1h", "6h", "3d", "30d")
SLO_PERIOD = "30d"  # the error budget is spent over 30 days
SLO_LATENCY_LE = "0.5"
OBJECTIVE_RULE = "driftd:slo_objective"


class Slo:
    """One SLO: what counts as bad, its ratio rules' name, and the default objective."""

    def __init__(self, name: str, title: str, rule: str, default: float, good: str) -> None:
        self.name, self.title, self.rule, self.default = name, title, rule, default
        self.good = good

    def ratio(self, window: str) -> str:
        """The name of the recording rule of the bad share over ``window``."""
        return f"{self.rule}{window}"

    def raw_ratio(self, window: str, matchers: str = "") -> str:
        """The bad share over ``window`` from the raw counters (the rule's expression)."""

        def rate(metric: str, *extra: str) -> str:
            return f"sum by (model, version) (rate({metric}{selector(*extra, matchers)}[{window}]))"

        if self.name == "errors":
            return f"{rate('driftd_prediction_errors_total')} / {rate('driftd_predictions_total')}"
        fast = rate("driftd_prediction_latency_seconds_bucket", f'le="{SLO_LATENCY_LE}"')
        return f"1 - ({fast} / {rate('driftd_prediction_latency_seconds_count')})"


SLOS = (
    Slo(
        "errors",
        "Errors",
        "model_version:driftd_prediction_errors:ratio_rate",
        0.995,
        "not an error",
    ),
    Slo(
        "latency",
        "Latency",
        "model_version:driftd_prediction_latency_slow:ratio_rate",
        0.99,
        f"answered within {SLO_LATENCY_LE} s",
    ),
)


def objective(slo: Slo, mm: str) -> str:
    """Each model's objective for ``slo``: its driftd:slo_objective series, or the default for
    a model that has none (one series per model, labelled ``model``)."""
    which = f'slo="{slo.name}"'
    return (
        f"(max by (model) ({OBJECTIVE_RULE}{selector(mm, which)}) "
        f"or on (model) ({slo.default:g} * group by (model) "
        f"(driftd_model_version_info{selector(mm)})))"
    )


RECORDED: dict[str, Callable[[str], str]] = {
    **{name: partial(leader_rule_expr, raw) for name, raw in LEADER_RULES.items()},
    QUALITY_RULE: quality_rule_expr,
    **{slo.ratio(w): partial(slo.raw_ratio, w) for slo in SLOS for w in SLO_WINDOWS},
}
"""Each recording rule a dashboard uses -> its expression, given matchers to push in."""
_RECORDED_REF = re.compile(
    r"(?<![\w:])(" + "|".join(re.escape(n) for n in RECORDED) + r")(?![\w:])"
    r"(?:\{([^}]*)\})?(\[[^\]]+\])?"
)


def leader(name: str, *matchers: str) -> str:
    """A decision series, from the leader, through its recording rule."""
    if name not in LEADER_RULES:
        raise KeyError(f"{name} is not a driftd:leader:* recording rule")
    return f"{name}{selector(*matchers)}"


def inline_rules(expr: str) -> str:
    """``expr`` with each recording rule replaced by its expression (a subquery under a range)."""

    def expand(m: re.Match[str]) -> str:
        name, matchers, rng = m.group(1), m.group(2) or "", m.group(3)
        inner = RECORDED[name](matchers.strip())
        return f"({inner})[{rng[1:-1]}:]" if rng else f"({inner})"

    return _RECORDED_REF.sub(expand, expr)


def version_info(sel: str) -> str:
    """One series per version in service (every instance exports the registry's versions)."""
    return (
        "max by (model, version, stage, alias, run, data_version, code_version, parent) "
        f"(driftd_model_version_info{sel})"
    )


# The canary verdict is a state set (one 0/1 series per state); panels turn the state that is 1
# into this code, whose value mapping shows the state's name.
VERDICTS = {
    "continue": ("0", "blue"),
    "promote": ("1", "green"),
    "rollback": ("-1", "red"),
    "halt": ("2", "orange"),
}


def verdict_state(mm: str) -> str:
    """Each model's canary state now, as its ``VERDICTS`` code (one series per model)."""
    terms = []
    for state, (code, _) in VERDICTS.items():
        series = leader("driftd:leader:canary_verdict", mm, f'driftd_canary_verdict="{state}"')
        terms.append(f"({series} == 1) * {code}")
    return "max by (model) (" + " or ".join(terms) + ")"


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


# Data links: a click on a series opens the model's (or canary's) dashboard for that series'
# model, on the same time range and datasource.
def to_dashboard(uid: str, title: str, *labels: str) -> DashboardLink:
    params = [f"var-{lbl}=${{__field.labels.{lbl}}}" for lbl in labels]
    params += ["${datasource:queryparam}", "${__url_time_range}"]
    return DashboardLink(title).url(f"/d/{uid}?{'&'.join(params)}")


def to_model(*labels: str) -> list[DashboardLink]:
    """A data link to the model page of the clicked series' model (and ``labels``)."""
    return [to_dashboard("driftd-model", "Model ${__field.labels.model}", "model", *labels)]


def to_canary() -> list[DashboardLink]:
    """A data link to the canary page of the clicked series' model."""
    return [to_dashboard("driftd-canary", "Canary ${__field.labels.model}", "model")]


def to_model_and_canary() -> list[DashboardLink]:
    return [*to_model(), *to_canary()]


P = TypeVar("P", timeseries.Panel, stat.Panel, table.Panel)


def _targets(panel: P, queries: Iterable[Dataquery]) -> P:
    for q in queries:
        panel = panel.with_target(q)
    return panel


def _decorate(panel: P, description: str, links: list[DashboardLink] | None) -> P:
    if description:
        panel = panel.description(description)
    if links:
        panel = panel.data_links(list(links))
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
    links: list[DashboardLink] | None = None,
    threshold_lines: list[tuple[float | None, str]] | None = None,
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
    if threshold_lines:
        p = p.thresholds(_thresholds(threshold_lines)).thresholds_style(
            GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.DASHED)
        )
    return _targets(_decorate(p, description, links), queries)


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
    text_mode: BigValueTextMode | None = None,
    links: list[DashboardLink] | None = None,
    decimals: float | None = None,
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
    if text_mode is not None:
        p = p.text_mode(text_mode)
    if thresholds:
        p = p.thresholds(_thresholds(thresholds))
    if decimals is not None:
        p = p.decimals(decimals)
    return _targets(_decorate(p, description, links), queries)


def _thresholds(steps: list[tuple[float | None, str]]) -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=v, color=c) for v, c in steps])
    )


def table_panel(
    ids: Ids,
    title: str,
    *queries: Dataquery,
    hide: list[str],
    order: list[str],
    rename: dict[str, str] | None = None,
    w: int = 24,
    h: int = 8,
    description: str = "",
    links: list[DashboardLink] | None = None,
) -> table.Panel:
    """A table of instant queries; several are merged into one row per label set (their values
    are ``Value #<refId>``, renamed by ``rename``)."""
    organize = DataTransformerConfig(
        id_val="organize",
        options={
            "excludeByName": dict.fromkeys(hide, True),
            "indexByName": {name: i for i, name in enumerate(order)},
            "renameByName": rename or {},
        },
    )
    p = table.Panel().id(ids()).title(title).datasource(DS).span(w).height(h)
    if len(queries) > 1:
        p = p.with_transformation(DataTransformerConfig(id_val="merge", options={}))
    p = p.with_transformation(organize)
    return _targets(_decorate(p, description, links), queries)


def verdict_mappings() -> list[Any]:
    return [
        ValueMap(
            options={
                code: ValueMappingResult(text=state, color=color, index=i)
                for i, (state, (code, color)) in enumerate(VERDICTS.items())
            }
        )
    ]


def _annotation(name: str, color: str, expr: str) -> AnnotationQuery:
    return (
        AnnotationQuery()
        .name(name)
        .datasource(DS)
        .enable(True)
        .hide(False)
        .icon_color(color)
        .expr(expr)
    )


def release_annotations(mm: str = "") -> list[Builder[AnnotationModel]]:
    """Rollouts as annotations: promotions and rollbacks (one marker per model per change; the
    registry counters are the same on every instance, hence ``max``) and each canary state the
    leader's verdict enters (continue, promote, rollback, halt)."""
    sel = selector(mm)
    out: list[Builder[AnnotationModel]] = [
        _annotation(name, color, f"max by (model) (changes({metric}{sel}[1m])) > 0")
        for name, metric, color in (
            ("Promotions", "driftd_promotions_total", "green"),
            ("Rollbacks", "driftd_rollbacks_total", "red"),
        )
    ]
    verdict = leader("driftd:leader:canary_verdict", mm)
    out.append(
        _annotation(
            "Canary verdicts",
            "purple",
            f"max by (model, driftd_canary_verdict) ((changes({verdict}[1m]) > 0) "
            f"and ({verdict} == 1))",
        )
    )
    return out


INCIDENT_LABELS = "model, stream, incident, url, report_url"
# What Grafana shows on a marker, per annotation (the builder has no text formats): an
# incident's link is its report, one click away.
ANNOTATION_FORMATS: dict[str, dict[str, str]] = {
    "Incidents": {
        "titleFormat": "incident {{incident}}: {{model}} {{stream}}",
        "textFormat": '<a href="{{report_url}}">report</a> · <a href="{{url}}">{{url}}</a>',
        "tagKeys": "model,stream",
    },
    "Promotions": {"titleFormat": "promotion: {{model}}", "tagKeys": "model"},
    "Rollbacks": {"titleFormat": "rollback: {{model}}", "tagKeys": "model"},
    "Canary verdicts": {
        "titleFormat": "canary {{model}}: {{driftd_canary_verdict}}",
        "tagKeys": "model,driftd_canary_verdict",
    },
}


def incident_annotations(sel: str = "") -> list[Builder[AnnotationModel]]:
    """A marker where each incident opens (its series appears), linking to its report."""
    info = f"driftd_incident_info{sel}"
    expr = (
        f"max by ({INCIDENT_LABELS}) ({info}) unless max by ({INCIDENT_LABELS}) ({info} offset 1m)"
    )
    return [_annotation("Incidents", "orange", expr)]


def with_annotation_formats(dash: dict[str, Any]) -> dict[str, Any]:
    """The builder has no text formats for annotations: add them to the encoded JSON."""
    for a in (dash.get("annotations") or {}).get("list") or []:
        a.update(ANNOTATION_FORMATS.get(a.get("name", ""), {}))
    return dash


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


def _all_of(name: str, label: str, source: str) -> QueryVariable:
    """A multi-value variable of a label's values, on All by default."""
    return (
        QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query(source)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def version_variable() -> QueryVariable:
    return _all_of(
        "version", "Version", 'label_values(driftd_model_version_info{model=~"$model"}, version)'
    )


def feature_variable() -> QueryVariable:
    """The model's declared features (every one has a driftd_feature_missing_total series)."""
    return _all_of(
        "feature", "Feature", 'label_values(driftd_feature_missing_total{model=~"$model"}, feature)'
    )


def datasource_variable() -> DatasourceVariable:
    return DatasourceVariable("datasource").label("Data source").type("prometheus")


def _base(uid: str, title: str, description: str) -> Dashboard:
    """A driftd dashboard: the datasource variable first (every query reads it), links to the
    other driftd dashboards (time range and variables carried), rollouts and incidents as
    annotations."""
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
        .with_variable(datasource_variable())
        .link(
            DashboardLink("driftd")
            .type(DashboardLinkType.DASHBOARDS)
            .tags(["driftd"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .annotations([*release_annotations(), *incident_annotations()])
    )


def overview() -> Dashboard:
    ids = Ids()
    mm = 'model=~"$model"'
    m = selector(mm)
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
            query("max by (topic, partition) (driftd_consumer_lag)", "{{topic}}[{{partition}}]"),
            w=8,
            description="Kafka messages not yet read, per topic partition. One instance holds "
            "each partition; max (not sum) does not count a partition twice while it moves.",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "File source: bytes left",
            query("max(driftd_file_source_remaining_bytes)", "bytes left"),
            unit="bytes",
            w=8,
            description="A file source's bytes not yet read (a replay's progress; Kafka "
            "sources show their lag instead).",
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
    d = outbox_panels(d, ids, m)
    d = d.with_row(Row("Models").id(ids()))
    d = d.with_panel(
        ts(
            ids,
            "Predictions per second",
            query(f"sum by (model) (rate(driftd_predictions_total{m}[{RATE}]))", "{{model}}"),
            unit="ops",
            w=8,
            links=to_model(),
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
            links=to_model(),
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Drift alarms",
            query(
                "sum by (model, kind) (increase("
                f"{leader('driftd:leader:drift_alarms_total', mm)}[{RATE}]))",
                "{{model}} {{kind}}",
            ),
            w=8,
            description="Alarms of the leader's detectors (driftd:leader:drift_alarms_total).",
            links=to_model(),
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Retrain jobs by state",
            query(f"max by (model, state) (driftd_retrain_jobs{m})", "{{model}} {{state}}"),
            w=8,
            links=to_model(),
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Retrain job duration (p90)",
            query(
                "histogram_quantile(0.9, max by (model, outcome, le) "
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
            query(verdict_state(mm), "{{model}}"),
            w=8,
            h=8,
            mappings=verdict_mappings(),
            description="The state the leader's last decision put each canary in "
            "(driftd:leader:canary_verdict, a state set: continue, promote, rollback, halt).",
            links=to_model_and_canary(),
        )
    )
    d = slo_overview(d, ids, mm)
    d = incidents_row(d, ids, m)
    return leadership(d, ids)


def outbox_panels(d: Dashboard, ids: Ids, m: str) -> Dashboard:
    """Deliveries waiting in the outbox and retrain jobs waiting in the queue (read from the
    database at scrape: the same on every instance, hence ``max``)."""
    d = d.with_panel(
        ts(
            ids,
            "Outbox events by state",
            query("max by (state) (driftd_outbox_events)", "{{state}}"),
            w=8,
            description="Outbox rows: pending (not yet delivered), delivered, dead (gave up "
            "after the retries; the deployment target never heard of them).",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Oldest pending outbox event",
            query("max(driftd_outbox_oldest_pending_age_seconds)", "age"),
            unit="s",
            w=8,
            description="Age of the oldest undelivered outbox event (0 when none): a traffic "
            "weight the model server has not received yet.",
        )
    )
    return d.with_panel(
        ts(
            ids,
            "Oldest retrain job by state",
            query(
                f"max by (model, state) (driftd_retrain_job_oldest_age_seconds{m})",
                "{{model}} {{state}}",
            ),
            unit="s",
            w=8,
            description="Age of each model's oldest queued and oldest running retrain job "
            "(0 when none): a stuck worker or an empty worker pool.",
            links=to_model(),
        )
    )


# Burn-rate windows shown (the page and ticket alerts' long windows, and the slow 3d one) and
# the burn rates the alerts fire at: 14.4x over 1h pages, 6x over 6h opens a ticket, 1x spends
# the budget exactly over the SLO window.
BURN_WINDOWS = ("1h", "6h", "3d")
BURN_LINES: list[tuple[float | None, str]] = [(None, "green"), (1, "yellow"), (6, "orange"),
                                              (14.4, "red")]  # fmt: skip
BUDGET_STEPS: list[tuple[float | None, str]] = [(None, "red"), (0, "orange"), (0.25, "green")]


def burn_rate(slo: Slo, window: str, mm: str, mvm: str) -> str:
    """How fast each version spends ``slo``'s error budget over ``window`` (1 = exactly the
    budget over the SLO window): its bad share divided by the allowed bad share."""
    return (
        f"{slo.ratio(window)}{selector(mvm)} / on (model) group_left () (1 - {objective(slo, mm)})"
    )


def budget_left(slo: Slo, mm: str, mvm: str) -> str:
    """The share of each version's error budget left over the SLO period (negative:
    overspent): 1 - its bad share over 30 days / the allowed bad share."""
    return f"1 - {burn_rate(slo, SLO_PERIOD, mm, mvm)}"


PRODUCTION = 'driftd_model_version_info{stage="production"}'


def in_production(expr: str) -> str:
    """``expr``'s series of the versions in production."""
    return f"{expr} and on (model, version) {PRODUCTION}"


def slo_overview(d: Dashboard, ids: Ids, mm: str) -> Dashboard:
    """Each model's error budget left and its fastest-burning version, per SLO."""
    d = d.with_row(Row("SLOs").id(ids()))
    for slo in SLOS:
        d = d.with_panel(
            stat_panel(
                ids,
                f"{slo.title}: error budget left (production, 30d)",
                query(in_production(budget_left(slo, mm, mm)), "{{model}} v{{version}}"),
                unit="percentunit",
                w=6,
                h=6,
                thresholds=BUDGET_STEPS,
                description=f"Share of the {slo.name} SLO's 30-day error budget left for each "
                f"model's production version (objective: driftd:slo_objective, default "
                f"{slo.default:g}; negative: overspent).",
                links=to_model(),
            )
        )
    for slo in SLOS:
        d = d.with_panel(
            ts(
                ids,
                f"{slo.title}: burn rate 1h (fastest version)",
                query(f"max by (model) ({burn_rate(slo, '1h', mm, mm)})", "{{model}}"),
                w=6,
                h=6,
                threshold_lines=BURN_LINES,
                description="Budget spent per unit of time by each model's fastest-burning "
                "version over the last hour (14.4: pages, 6 over 6h: ticket, 1: spends the "
                "budget exactly over the SLO window).",
                links=to_model(),
            )
        )
    return d


def slo_row(d: Dashboard, ids: Ids, mm: str, mvm: str) -> Dashboard:
    """Per SLO: the SLI against the objective, the burn rate over 1h/6h/3d per version, and
    the error budget left over the SLO period (30 days)."""
    d = d.with_row(Row("SLOs and error budget").id(ids()))
    for slo in SLOS:
        d = d.with_panel(
            ts(
                ids,
                f"{slo.title}: SLI vs objective",
                query(f"1 - {slo.ratio('5m')}{selector(mvm)}", "SLI {{version}}", "A"),
                query(objective(slo, mm), "objective", "B"),
                unit="percentunit",
                w=9,
                min_val=None,
                description=f"Share of good predictions ({slo.good}) over 5 minutes per "
                f"version, and the model's objective (driftd:slo_objective, default "
                f"{slo.default:g}).",
            )
        )
        d = d.with_panel(
            ts(
                ids,
                f"{slo.title}: burn rate",
                *[
                    query(burn_rate(slo, w, mm, mvm), f"{w} {{{{version}}}}", ref)
                    for w, ref in zip(BURN_WINDOWS, "ABC", strict=True)
                ],
                w=9,
                threshold_lines=BURN_LINES,
                description="Bad share / (1 - objective) over 1h, 6h and 3d per version: "
                "14.4 over 1h pages, 6 over 6h opens a ticket, 1 spends the budget exactly "
                "over the SLO window.",
            )
        )
        d = d.with_panel(
            stat_panel(
                ids,
                f"{slo.title}: error budget left (30d)",
                query(budget_left(slo, mm, mvm), "v{{version}}"),
                unit="percentunit",
                w=6,
                h=8,
                thresholds=BUDGET_STEPS,
                description="Share of the 30-day error budget left per version: 1 - bad share "
                "over 30 days / (1 - objective); negative: overspent.",
            )
        )
    return d


def incidents_row(d: Dashboard, ids: Ids, m: str) -> Dashboard:
    """Incidents by state and the unresolved ones with their links (from the registry's
    database: the same on every instance, hence ``max``)."""
    d = d.with_row(Row("Incidents").id(ids()))
    d = d.with_panel(
        ts(
            ids,
            "Incidents by state",
            query(f"max by (model, state) (driftd_incidents{m})", "{{model}} {{state}}"),
            w=8,
            links=to_model(),
            description="Alarms grouped per model, version and stream (driftd incidents ls). "
            "Each marker on the time axis opens one; its link is the incident's report.",
        )
    )
    d = d.with_panel(
        stat_panel(
            ids,
            "Oldest unresolved incident: first alarm",
            query(
                f"min by (model) (driftd_incident_open_since_timestamp_seconds{m}) * 1000",
                "{{model}}",
            ),
            unit="dateTimeAsIso",
            w=4,
            h=8,
            description="Event time of the first alarm of each model's oldest open incident.",
        )
    )
    return d.with_panel(
        table_panel(
            ids,
            "Unresolved incidents",
            query(
                "max by (model, version, stream, state, incident, url, report_url) "
                f"(driftd_incident_info{m})",
                ref="A",
                instant=True,
            ),
            hide=["Time", "Value"],
            order=["model", "version", "stream", "state", "incident", "report_url", "url"],
            w=12,
            description="Open and acknowledged incidents: report_url opens the HTML report "
            "(signed: no token needed), url is the incident in the API.",
        )
    )


def leadership(d: Dashboard, ids: Ids) -> Dashboard:
    """Which instance leads each pipeline, its lease and what its merge holds."""
    d = d.with_row(Row("Leadership").id(ids()))
    d = d.with_panel(
        stat_panel(
            ids,
            "Leader",
            query("max by (pipeline, instance) (driftd_leader == 1)", "{{pipeline}}: {{instance}}"),
            text_mode=BigValueTextMode.NAME,
            description="The instance that holds the pipeline's lease and takes the decisions "
            "(driftd_leader == 1). Nothing here: no leader (alert DriftdNoLeader).",
        )
    )
    d = d.with_panel(
        stat_panel(
            ids,
            "Instances and leaders",
            query("count by (pipeline) (driftd_leader)", "instances {{pipeline}}", "A"),
            query("sum by (pipeline) (driftd_leader)", "leaders {{pipeline}}", "B"),
            description="driftd instances scraped per pipeline, and how many of them lead "
            "(exactly 1 when healthy; alerts DriftdNoLeader and DriftdSplitBrain).",
        )
    )
    d = d.with_panel(
        stat_panel(
            ids,
            "Lease epoch",
            query(leader("driftd:leader:epoch"), "{{pipeline}}"),
            description="The fencing epoch of the current lease; it grows by one per new "
            "leader (or re-acquisition).",
        )
    )
    d = d.with_panel(
        stat_panel(
            ids,
            "Leader changes (1h)",
            query(f"changes({leader('driftd:leader:epoch')}[1h])", "{{pipeline}}"),
            thresholds=[(None, "green"), (3, "orange")],
            description="New lease epochs seen in the last hour.",
        )
    )
    d = d.with_panel(
        statetimeline.Panel()
        .id(ids())
        .title("Leader per instance")
        .datasource(DS)
        .span(12)
        .height(8)
        .mappings(
            [
                ValueMap(
                    options={
                        "0": ValueMappingResult(text="follower", color="transparent", index=0),
                        "1": ValueMappingResult(text="leader", color="green", index=1),
                    }
                )
            ]
        )
        .with_target(query("max by (pipeline, instance) (driftd_leader)", "{{instance}}"))
    )
    d = d.with_panel(
        ts(
            ids,
            "Event clock lag",
            query(
                f"time() - {leader('driftd:leader:event_clock_seconds')}",
                "{{pipeline}}",
            ),
            unit="s",
            w=12,
            description="Wall time minus the event time up to which the leader has merged "
            "every partition (at least leader.lateness_s + leader.bucket_s; it grows while a "
            "partition stalls).",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Held buckets",
            query(leader("driftd:leader:held_buckets"), "{{pipeline}}"),
            w=6,
            description="Merged buckets waiting for the global watermark, over models.",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Late values per second",
            query(f"rate({leader('driftd:leader:late_values_total')}[{RATE}])", "{{pipeline}}"),
            unit="ops",
            w=6,
            description="Values that reached the leader after the watermark passed their "
            "bucket (merged into the next bucket).",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Merges",
            query(
                f"sum by (pipeline, instance) (rate(driftd_leader_merges_total[{RATE}]))",
                "merges/s {{instance}}",
                "A",
            ),
            query(
                f"sum by (pipeline, instance) (rate(driftd_leader_merge_seconds_total[{RATE}]))",
                "busy {{instance}}",
                "B",
            ),
            w=6,
            description="Merges of the partitions' reports per second, and the share of wall "
            "time spent merging and deciding (seconds per second), per instance.",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Lease renewal failures and fenced-out writes",
            query(
                "sum by (pipeline, instance) "
                f"(increase(driftd_lease_renewal_failures_total[{RATE}]))",
                "renewal failures {{instance}}",
                "A",
            ),
            query(
                f"sum by (pipeline, instance) (increase(driftd_leader_fenced_out_total[{RATE}]))",
                "fenced out {{instance}}",
                "B",
            ),
            w=6,
            description="Lease renewals that failed on a database error, and leader writes "
            "refused because the lease had moved to a newer epoch (a deposed leader).",
        )
    )
    return d


def windowed_quality(mvm: str) -> str:
    """Quality over the last rate interval from the counters, per model and version: accuracy
    (correct / labeled) for a classifier, rmse (sqrt(squared error / labeled)) for a regressor
    (the task read from the metric label of its lifetime driftd_model_quality)."""

    def rate(metric: str) -> str:
        return f"sum by (model, version) (rate({metric}{selector(mvm)}[{RATE}]))"

    regressor = "driftd_model_quality" + selector(mvm, 'metric="rmse"')
    labeled = rate("driftd_labeled_total")
    accuracy = f"{rate('driftd_correct_total')} / {labeled}"
    rmse = f"sqrt({rate('driftd_squared_error_total')} / {labeled})"
    return (
        f'(label_replace({accuracy}, "metric", "accuracy", "", "") '
        f"unless on (model, version) {regressor}) "
        f'or (label_replace({rmse}, "metric", "rmse", "", "") '
        f"and on (model, version) {regressor})"
    )


FEATURE_STREAMS = 'stream=~"feature:(${feature})(=.*)?"'


def by_feature(expr: str) -> str:
    """``expr`` with a ``feature`` label: the NAME of its ``feature:NAME[=VALUE]`` stream."""
    return f'label_replace({expr}, "feature", "$1", "stream", "feature:([^=]*).*")'


def feature_drift(d: Dashboard, ids: Ids, mm: str, mvm: str) -> Dashboard:
    """Per feature: each detector's live statistic next to its threshold, and how often the
    feature is missing."""
    mvf = f"{mvm}, {FEATURE_STREAMS}"
    stat_now = leader("driftd:leader:detector_statistic", mvf)
    thr_now = leader("driftd:leader:detector_threshold", mvf)
    d = d.with_row(Row("Drift per feature").id(ids()))
    d = d.with_panel(
        table_panel(
            ids,
            "Feature detectors now",
            query(by_feature(stat_now), ref="A", instant=True),
            query(by_feature(thr_now), ref="B", instant=True),
            query(by_feature(f"{stat_now} / {thr_now}"), ref="C", instant=True),
            hide=["Time", "__name__", "job", "pipeline", "model"],
            order=["feature", "stream", "version", "detector", "statistic", "threshold"],
            rename={"Value #A": "statistic", "Value #B": "threshold", "Value #C": "ratio"},
            w=12,
            h=10,
            description="Each detector on a feature:NAME (or feature:NAME=VALUE) stream: its "
            "statistic now and the threshold it alarms at (ratio >= 1: alarming).",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Feature detectors: statistic / threshold",
            query(by_feature(f"{stat_now} / {thr_now}"), "{{feature}} {{detector}} v{{version}}"),
            w=12,
            h=10,
            min_val=None,
            threshold_lines=[(None, "green"), (1, "red")],
            description="Each feature detector's statistic as a share of its threshold, so "
            "features in different units share one axis; 1 is where it alarms.",
        )
    )
    missing = selector(mm, 'feature=~"$feature"')
    return d.with_panel(
        ts(
            ids,
            "Missing values per feature",
            query(
                f"sum by (model, feature) (rate(driftd_feature_missing_total{missing}[{RATE}])) "
                "/ on (model) group_left () "
                f"sum by (model) (rate(driftd_predictions_total{selector(mm)}[{RATE}]))",
                "{{feature}}",
            ),
            unit="percentunit",
            w=24,
            h=6,
            description="Share of predictions accepted without the feature (absent or null).",
        )
    )


def model_page() -> Dashboard:
    ids = Ids()
    mm = 'model=~"$model"'
    mvm = f'{mm}, version=~"$version"'
    mv = selector(mvm)
    d = _base(
        "driftd-model",
        "driftd / Model",
        "One model: drift per feature and detector, quality, latency, errors and versions.",
    )
    d = d.annotations(
        [*release_annotations('model=~"$model"'), *incident_annotations('{model=~"$model"}')]
    )
    d = d.with_variable(model_variable(include_all=False)).with_variable(version_variable())
    d = d.with_variable(feature_variable())
    d = slo_row(d, ids, mm, mvm)
    d = d.with_row(Row("Drift").id(ids()))
    d = d.with_panel(
        ts(
            ids,
            "Drift statistic vs threshold",
            query(
                leader("driftd:leader:detector_statistic", mvm),
                "{{version}} {{stream}} {{detector}}",
                "A",
            ),
            query(
                leader("driftd:leader:detector_threshold", mvm),
                "threshold {{version}} {{stream}} {{detector}}",
                "B",
            ),
            query(
                leader("driftd:leader:drift_statistic", mvm),
                "at last alarm {{version}} {{stream}} {{detector}}",
                "C",
            ),
            query(
                leader("driftd:leader:drift_threshold", mvm),
                "threshold at last alarm {{version}} {{stream}} {{detector}}",
                "D",
            ),
            w=16,
            min_val=None,
            description="Each streaming detector's live statistic per stream (feature:NAME, "
            "error, score, latency), the threshold it alarms at, and its value at the last "
            "alarm.",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Drift alarms",
            query(
                "sum by (version, stream, detector, kind) "
                f"(increase({leader('driftd:leader:drift_alarms_total', mvm)}[{RATE}]))",
                "{{version}} {{stream}} {{detector}} {{kind}}",
            ),
            w=8,
        )
    )
    d = feature_drift(d, ids, mm, mvm)
    d = d.with_row(Row("Quality").id(ids()))
    d = d.with_panel(
        ts(
            ids,
            "Quality per version (windowed)",
            query(windowed_quality(mvm), "{{version}} {{metric}}"),
            w=12,
            min_val=None,
            description="Over the labels joined in the last rate interval, all instances "
            "together: accuracy = correct / labeled (classification), rmse = "
            "sqrt(squared error / labeled) (regression).",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Quality per version (lifetime)",
            query(f"{QUALITY_RULE}{mv}", "{{version}} {{metric}}"),
            w=12,
            min_val=None,
            description="Over every joined label since each partition's first, all instances "
            "together: each instance's quality weighted by its labeled rows.",
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
            query(version_info('{model=~"$model"}'), ref="A", instant=True),
            hide=["Time", "Value", "__name__", "instance", "job", "model"],
            order=["version", "stage", "alias", "parent", "run", "data_version", "code_version"],
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Traffic weight per version",
            query('max by (model, version) (driftd_canary_weight{model=~"$model"})', "{{version}}"),
            unit="percentunit",
            w=12,
            h=6,
            links=to_canary(),
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Retrain jobs by state",
            query('max by (model, state) (driftd_retrain_jobs{model=~"$model"})', "{{state}}"),
            w=12,
            h=6,
        )
    )
    return d


def canary_page() -> Dashboard:
    ids = Ids()
    mm = 'model=~"$model"'
    m = selector(mm)
    d = _base(
        "driftd-canary",
        "driftd / Canary",
        "Canary rollout: traffic weights, the always-valid evidence per SLO, the verdict.",
    )
    d = d.annotations([*release_annotations(mm), *incident_annotations(m)])
    d = d.with_variable(model_variable(include_all=False))
    d = d.with_panel(
        stat_panel(
            ids,
            "Verdict",
            query(verdict_state(mm), "{{model}}"),
            w=6,
            h=6,
            mappings=verdict_mappings(),
            description="The state the leader's last decision put the canary in: continue, "
            "promote, rollback or halt (driftd:leader:canary_verdict, a state set).",
            links=to_model(),
        )
    )
    d = d.with_panel(
        stat_panel(
            ids,
            "Promotions (range)",
            query(
                f"sum(max by (model) (increase(driftd_promotions_total{m}[$__range])))",
                "promotions",
            ),
            w=6,
            h=6,
            thresholds=[(None, "green")],
        )
    )
    d = d.with_panel(
        stat_panel(
            ids,
            "Rollbacks (range)",
            query(
                f"sum(max by (model) (increase(driftd_rollbacks_total{m}[$__range])))",
                "rollbacks",
            ),
            w=6,
            h=6,
            thresholds=[(None, "green"), (1, "red")],
        )
    )
    d = d.with_panel(
        stat_panel(
            ids,
            "Traffic share now",
            query(f"max by (model, version) (driftd_canary_weight{m})", "{{version}}"),
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
            query(f"max by (model, version) (driftd_canary_weight{m})", "{{version}}"),
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
        .description("The canary's state over time (driftd:leader:canary_verdict).")
        .with_target(query(verdict_state(mm), "{{model}}"))
    )
    d = d.with_row(Row("Evidence (canary - champion, always-valid bounds)").id(ids()))
    for title, slo in (("errors", "error.*"), ("latency", "latency.*"), ("quality", "quality")):
        d = d.with_panel(
            ts(
                ids,
                f"Evidence: {title}",
                query(
                    leader("driftd:leader:canary_evidence", mm, f'slo=~"{slo}"', 'test="rollback"'),
                    "{{slo}}: canary worse (rollback test)",
                    "A",
                ),
                query(
                    leader("driftd:leader:canary_evidence", mm, f'slo=~"{slo}"', 'test="promote"'),
                    "{{slo}}: canary not worse (promote test)",
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
                f"sum by (model, version) (rate(driftd_prediction_errors_total{m}[{RATE}])) / "
                f"sum by (model, version) (rate(driftd_predictions_total{m}[{RATE}]))",
                "{{version}}",
            ),
            unit="percentunit",
            w=12,
            links=to_model("version"),
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Latency p99 per version",
            query(
                "histogram_quantile(0.99, sum by (model, version, le) "
                f"(rate(driftd_prediction_latency_seconds_bucket{m}[{RATE}])))",
                "{{version}}",
            ),
            unit="s",
            w=12,
            links=to_model("version"),
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Promotions and rollbacks",
            query(
                f"max by (model) (increase(driftd_promotions_total{m}[{RATE}]))",
                "promotions {{model}}",
                "A",
            ),
            query(
                f"max by (model) (increase(driftd_rollbacks_total{m}[{RATE}]))",
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
    versions = version_info('{model=~"$model"}')
    d = d.with_variable(model_variable(include_all=True))
    d = d.with_panel(
        table_panel(
            ids,
            "Lineage",
            query(versions, ref="A", instant=True),
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
            links=[
                DashboardLink("Model ${__data.fields.model} v${__data.fields.version}").url(
                    "/d/driftd-model?var-model=${__data.fields.model}"
                    "&var-version=${__data.fields.version}"
                    "&${datasource:queryparam}&${__url_time_range}"
                )
            ],
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Versions per stage",
            query(
                "count by (model, stage) (max by (model, version, stage) "
                '(driftd_model_version_info{model=~"$model"}))',
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
    if re.search(r"\$[A-Za-z_{]", expr):  # $1 is a label_replace group
        raise ValueError(f"unsubstituted template variable in {expr!r}")
    return expr


# Panels whose series exist only in some deployments: the end-to-end run (Kafka, an error
# detector only) does not expect them to return data; the multi-instance test still does.
OPTIONAL = {
    ("driftd-overview", "File source: bytes left"): "a file source only (Kafka: consumer lag)",
    ("driftd-model", "Feature detectors now"): "only with a detector on a feature:NAME stream",
    ("driftd-model", "Feature detectors: statistic / threshold"): (
        "only with a detector on a feature:NAME stream"
    ),
}


def collect_queries(dashboards: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    panels = {(d["uid"], p["title"]) for d in dashboards.values() for p in iter_panels(d["panels"])}
    if unknown := set(OPTIONAL) - panels:
        raise ValueError(f"OPTIONAL names panels that do not exist: {sorted(unknown)}")
    out: list[dict[str, Any]] = []
    for fname, dash in dashboards.items():
        for p in iter_panels(dash.get("panels") or []):
            for t in p.get("targets") or []:
                optional = OPTIONAL.get((dash["uid"], p["title"]))
                out.append(
                    {
                        "dashboard": dash["uid"],
                        "file": f"grafana/{fname}",
                        "kind": "panel",
                        # A live loop returns data for every panel query (the e2e test) but
                        # those of deployments unlike it (optional says which).
                        "expect_data": optional is None,
                        **({"optional": optional} if optional else {}),
                        "panel_id": p["id"],
                        "panel": p["title"],
                        "ref_id": t["refId"],
                        "instant": bool(t.get("instant")),
                        "expr": t["expr"],
                        "query": inline_rules(substitute(t["expr"])),
                    }
                )
        for a in (dash.get("annotations") or {}).get("list") or []:
            if "expr" in a:
                out.append(
                    {
                        "dashboard": dash["uid"],
                        "file": f"grafana/{fname}",
                        "kind": "annotation",
                        # Only returns data around a rollout's change or an incident.
                        "expect_data": False,
                        "panel_id": None,
                        "panel": a["name"],
                        "ref_id": None,
                        "instant": False,
                        "expr": a["expr"],
                        "query": inline_rules(substitute(a["expr"])),
                    }
                )
    return out


def render() -> dict[str, str]:
    """File name (relative to dashboards/) -> content."""
    dashboards = {name: with_annotation_formats(encode(fn())) for name, fn in DASHBOARDS.items()}
    files = {f"grafana/{name}": dump(data) for name, data in dashboards.items()}
    files["queries.json"] = dump(
        {
            "_comment": "Generated by dashboards/build.py; do not edit. In query, template "
            "variables are substituted by values matching everything and recording rules "
            "(prometheus/rules.yml) are inlined, so a Prometheus without driftd's rules "
            "answers it.",
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
