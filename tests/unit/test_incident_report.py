"""The incident report is one self-contained, deterministic HTML page whose plots are inline SVG.

The HTML is parsed (html.parser for the page, xml.etree for each <svg>), not grepped, so the
checks see what a browser sees: which plots exist, what is text and what is markup.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftd.incidents import svg
from driftd.incidents.report import TOP_FEATURES, render
from driftd.incidents.types import (
    FeatureShift,
    Histogram,
    IncidentEvidence,
    PerformancePoint,
    SeriesPoint,
)

T0 = 1_764_806_400.0  # 2025-12-04T00:00:00Z
HOSTILE = "<script>alert('x')</script>&\"q\""
SVG_NS = "{http://www.w3.org/2000/svg}"


def numeric_shift(name: str, effect: float) -> FeatureShift:
    edges = [0.0, 1.0, 2.0, 3.0, 4.0]
    return FeatureShift(
        feature=name,
        kind="numeric",
        effect=effect,
        lower=effect * 0.8,
        upper=effect * 1.2,
        confidence=0.95,
        effect_name="wasserstein / sd",
        p_value=1e-6,
        n_reference=5000,
        n_current=1000,
        summary=f"mean 1.5 -> {1.5 + effect:.1f}",
        histogram=Histogram(edges, (), [0.1, 0.4, 0.4, 0.1], [0.05, 0.15, 0.4, 0.4]),
    )


def categorical_shift(name: str, effect: float) -> FeatureShift:
    return FeatureShift(
        feature=name,
        kind="categorical",
        effect=effect,
        lower=effect - 0.05,
        upper=effect + 0.05,
        confidence=0.95,
        effect_name="total variation",
        p_value=0.002,
        n_reference=5000,
        n_current=1000,
        summary="'eu' 40 % -> 12 %",
        histogram=Histogram((), ["eu", "us", "apac"], [0.4, 0.4, 0.2], [0.12, 0.6, 0.28]),
    )


def evidence(**changes: object) -> IncidentEvidence:
    shifts = [numeric_shift("amount", 1.4), categorical_shift("region", 0.28)]
    shifts += [numeric_shift(f"f{i}", 0.5 / (i + 1)) for i in range(5)]
    stat = [SeriesPoint(T0 + 60 * i, 0.1 * i, threshold=1.0) for i in range(20)]
    perf = [
        PerformancePoint(
            T0 + 300 * i,
            0.9 - 0.01 * i,
            0.85 - 0.01 * i,
            0.95 - 0.01 * i,
            realised=(0.88 - 0.012 * i) if i < 4 else None,
        )
        for i in range(8)
    ]
    ev = IncidentEvidence(
        incident_id="inc-42",
        title="fraud v3: drift on feature:amount",
        model="fraud",
        version="3",
        stream="transactions",
        state="open",
        opened_ts=T0 + 600,
        last_alarm_ts=T0 + 1140,
        alarms=9,
        reference="training sample (2025-11-01..2025-11-30)",
        detectors=("ks:amount", "psi:region"),
        shifts=shifts,
        statistic=stat,
        performance=perf,
        performance_metric="roc_auc",
        links=(
            ("API", "http://driftd.internal:8000/incidents/inc-42"),
            ("Grafana", "https://grafana.internal/d/driftd?var-model=fraud&var-stream=tx"),
        ),
    )
    return replace(ev, **changes)  # type: ignore[arg-type]


class Page(HTMLParser):
    """Tags with their attributes, the text, and the raw <svg> elements of a page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()
        self.svgs = [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", html, re.S)]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def plots(self) -> dict[str, ET.Element]:
        return {str(s.get("data-plot")): s for s in self.svgs}


def test_the_page_has_every_plot_each_with_a_title() -> None:
    ev = evidence()
    page = Page(render(ev))
    plots = page.plots()
    top = [s.feature for s in ev.shifts[:TOP_FEATURES]]
    assert set(plots) == {f"feature:{f}" for f in top} | {"statistic", "performance"}
    assert [t for t, a in page.tags if t == "svg"] == ["svg"] * len(plots)  # all parsed
    for name, el in plots.items():
        title = el.find(f"{SVG_NS}title")
        assert title is not None and title.text, name
    # Numeric bins are bars; the categorical feature is paired bars, one pair per category.
    assert len(plots["feature:amount"].findall(f"{SVG_NS}rect")) >= 8
    region_texts = {t.text for t in plots["feature:region"].iter(f"{SVG_NS}text")}
    assert {"eu", "us", "apac", "reference", "current"} <= region_texts


def test_the_table_lists_every_ranked_feature_in_order() -> None:
    ev = evidence()
    page = Page(render(ev))
    cells = [c.strip() for c in page.text]
    positions = [cells.index(s.feature) for s in ev.shifts]
    assert positions == sorted(positions) and len(ev.shifts) > TOP_FEATURES
    html = render(ev)
    assert "[1.12, 1.68] (95 %)" in html and "wasserstein / sd" in html and "1e-6" in html


def test_header_shows_state_times_in_utc_and_links() -> None:
    page = Page(render(evidence(), generated_at=T0 + 3600))
    text = "".join(page.text)
    for expected in (
        "open",
        "2025-12-04T00:10:00Z",
        "2025-12-04T00:19:00Z",
        "ks:amount, psi:region",
        "training sample",
        "Generated 2025-12-04T01:00:00Z",
    ):
        assert expected in text
    hrefs = [a.get("href") for t, a in page.tags if t == "a"]
    assert hrefs == [url for _, url in evidence().links]


def test_alarms_above_the_threshold_are_marked_and_the_threshold_is_drawn() -> None:
    plot = Page(render(evidence())).plots()["statistic"]
    alarms = [c for c in plot.iter(f"{SVG_NS}circle") if c.get("class") == "alarm"]
    assert len(alarms) == sum(1 for i in range(20) if 0.1 * i > 1.0)  # 9 points above 1.0
    dashed = [p for p in plot.iter(f"{SVG_NS}polyline") if p.get("stroke-dasharray")]
    assert len(dashed) == 1  # the threshold line


def test_performance_band_estimate_and_realised_points() -> None:
    plot = Page(render(evidence())).plots()["performance"]
    assert len(plot.findall(f"{SVG_NS}polygon")) == 1
    assert len(plot.findall(f"{SVG_NS}polyline")) == 1
    realised = [c for c in plot.findall(f"{SVG_NS}circle") if c.get("fill") == svg.CURRENT]
    assert len(realised) == 4 + 1  # four realised windows, plus the legend's dot


def test_no_performance_data_gives_a_note_instead_of_a_plot() -> None:
    html = render(evidence(performance=()))
    assert "performance" not in Page(html).plots()
    assert "No performance estimate is available" in html


def test_empty_evidence_renders_notes_and_no_plots() -> None:
    ev = evidence(shifts=(), statistic=(), performance=(), detectors=(), links=())
    page = Page(render(ev))
    assert page.plots() == {}
    text = "".join(page.text)
    assert "No feature shifts" in text and "No statistic series" in text
    assert "No performance estimate" in text


def test_hostile_text_cannot_inject_markup() -> None:
    bad = numeric_shift(HOSTILE, 2.0)
    ev = evidence(
        title=HOSTILE,
        model=HOSTILE,
        stream=HOSTILE,
        state=HOSTILE,
        reference=HOSTILE,
        detectors=(HOSTILE,),
        shifts=[
            bad,
            replace(
                categorical_shift("c", 0.2),
                histogram=Histogram((), [HOSTILE, "b"], [0.5, 0.5], [0.1, 0.9]),
                summary=HOSTILE,
            ),
        ],
        performance_metric=HOSTILE,
        links=(
            (HOSTILE, 'https://grafana.internal/d/x?a=1&b="><script>'),
            ("js", "javascript:alert(1)"),
        ),
    )
    html = render(ev)
    page = Page(html)
    assert "script" not in {t for t, _ in page.tags}
    assert "<script" not in html
    # The hostile name survives as text and as the attribute value, never as markup.
    assert HOSTILE in "".join(page.text)
    assert f"feature:{HOSTILE}" in page.plots()
    assert [a.get("href") for t, a in page.tags if t == "a"] == [
        'https://grafana.internal/d/x?a=1&b="><script>'
    ]  # the javascript: link is shown as text, not made clickable
    for _, attrs in page.tags:
        assert not any(k.startswith("on") for k in attrs)


def test_control_and_bidi_characters_are_shown_as_escapes() -> None:
    name = "amount\u202e\x00\x1b[2J"
    html = render(evidence(shifts=[numeric_shift(name, 1.0)], model="m\u202eodel"))
    assert "\u202e" not in html and "\x00" not in html and "\x1b" not in html
    page = Page(html)
    assert "feature:amount\\u202e\\x00\\x1b[2J" in page.plots()
    assert "m\\u202eodel" in "".join(page.text)


def test_no_remote_assets_and_no_script() -> None:
    html = render(evidence())
    page = Page(html)
    tags = {t for t, _ in page.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    for tag, attrs in page.tags:
        for key in ("src", "href", "xlink:href"):
            value = attrs.get(key) or ""
            if tag == "a" and key == "href":
                continue  # the evidence's own links, checked in test_header...
            assert not re.match(r"\s*(https?:)?//", value), (tag, key, value)
    css = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert css and not any(re.search(r"url\(|@import", c) for c in css)
    # The page forbids fetching anything, so a later edit that adds an asset fails visibly.
    csp = [a for t, a in page.tags if t == "meta" and a.get("http-equiv")]
    assert csp and "default-src 'none'" in str(csp[0].get("content"))
    # The only http(s) URLs in the document: the given links and the SVG namespace.
    urls = set(re.findall(r"https?://[^\s\"'<>]+", html))
    allowed = {u.replace("&", "&amp;") for _, u in evidence().links}
    assert urls - allowed == {"http://www.w3.org/2000/svg"}


def test_same_input_same_bytes() -> None:
    a = render(evidence(), generated_at=T0)
    b = render(evidence(), generated_at=T0)
    assert a == b
    assert render(evidence()) != a  # the generation time is the only clock in the page


def test_nan_inf_single_point_and_huge_values() -> None:
    nan, inf = math.nan, math.inf
    stat = [
        SeriesPoint(T0, nan, 1.0),
        SeriesPoint(T0 + 60, 3e12, 1e12),
        SeriesPoint(T0 + 120, inf, 1.0),
        SeriesPoint(nan, 1.0, 1.0),
        SeriesPoint(T0 + 180, 2e12, 1e12),
    ]
    perf = [PerformancePoint(T0, 0.8, nan, inf, realised=nan)]
    ev = evidence(
        statistic=stat,
        performance=perf,
        shifts=[
            replace(
                numeric_shift("x", nan),
                summary="moved",
                histogram=Histogram([-inf, 0.0, 1.0, inf], (), [0.2, 0.6, 0.2], [0.1, 0.1, 0.8]),
            )
        ],
    )
    html = render(ev)
    plots = Page(html).plots()
    assert set(plots) == {"feature:x", "statistic", "performance"}
    assert "nan" not in html.lower().replace("nanos", "") and "inf" not in html.replace("info", "")
    labels = [t.text or "" for t in plots["statistic"].iter(f"{SVG_NS}text")]
    assert any(re.fullmatch(r"\d(\.\d{1,2})?e12", lab) for lab in labels), labels
    alarms = [c for c in plots["statistic"].iter(f"{SVG_NS}circle") if c.get("class") == "alarm"]
    assert len(alarms) == 2
    # A single performance point: drawn as a dot, no band (its bounds are not finite).
    assert plots["performance"].findall(f"{SVG_NS}polygon") == []
    for plot in plots.values():
        assert_inside(plot)


def test_one_point_series_and_degenerate_ranges() -> None:
    html = render(evidence(statistic=[SeriesPoint(T0, 5.0, None)]))
    plot = Page(html).plots()["statistic"]
    assert len(plot.findall(f"{SVG_NS}circle")) >= 1  # the lone point is visible
    assert not any(c.get("class") == "alarm" for c in plot.iter(f"{SVG_NS}circle"))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (1234.5, "1.23e3"),
        (0.000123456, "0.000123"),
        (-2.5e12, "-2.5e12"),
        (45.67, "45.7"),
    ],
)
def test_numbers_keep_three_significant_figures(value: float, text: str) -> None:
    assert svg.fmt(value) == text


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 1.0), (-3.0, 7.0), (1e12, 3e12), (-1e308, 1e308)])
def test_ticks_are_round_and_inside_the_range(lo: float, hi: float) -> None:
    ticks = svg.nice_ticks(lo, hi)
    assert 1 <= len(ticks) <= 8 and all(lo <= t <= hi * (1 + 1e-12) for t in ticks)
    assert ticks == sorted(ticks)


def test_a_single_moment_gets_a_time_axis_around_it() -> None:
    plot = Page(render(evidence(statistic=[SeriesPoint(T0, 1.0, 2.0)]))).plots()["statistic"]
    labels = [t.text for t in plot.iter(f"{SVG_NS}text")]
    assert "00:00" in labels and "UTC" in labels  # minutes around T0, not years
    assert not any(lab and lab.startswith("20") for lab in labels)


def test_a_year_of_points_and_many_categories() -> None:
    year = [SeriesPoint(T0 + 86400 * d, float(d % 7), 5.0) for d in range(365)]
    labels = [f"category-with-a-long-name-{i}" for i in range(200)]
    cats = Histogram((), labels, [1 / 200] * 200, [1 / 200] * 200)
    ev = evidence(statistic=year, shifts=[replace(categorical_shift("c", 0.1), histogram=cats)])
    plots = Page(render(ev)).plots()
    texts = [t.text or "" for t in plots["feature:c"].iter(f"{SVG_NS}text")]
    assert 10 <= sum(t.startswith("category") for t in texts) <= 12  # thinned, not overlapping
    assert all(len(t) <= 14 for t in texts)  # long names are cut with an ellipsis
    days = [t.text or "" for t in plots["statistic"].iter(f"{SVG_NS}text")]
    assert any(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in days), days
    alarms = [c for c in plots["statistic"].iter(f"{SVG_NS}circle") if c.get("class") == "alarm"]
    assert len(alarms) == sum(1 for d in range(365) if d % 7 > 5)


floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
texts = st.text(max_size=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=texts,
    title=texts,
    values=st.lists(st.tuples(floats, floats, st.none() | floats), max_size=12),
    perf=st.lists(st.tuples(floats, floats, floats, floats, st.none() | floats), max_size=6),
    bins=st.lists(st.tuples(floats, floats), min_size=1, max_size=6),
)
def test_any_evidence_renders_to_well_formed_svg_without_nan(
    name: str,
    title: str,
    values: list[tuple[float, float, float | None]],
    perf: list[tuple[float, float, float, float, float | None]],
    bins: list[tuple[float, float]],
) -> None:
    hist = Histogram(
        [float(i) for i in range(len(bins) + 1)], (), [r for r, _ in bins], [c for _, c in bins]
    )
    ev = evidence(
        title=title,
        shifts=[replace(numeric_shift(name, 1.0), histogram=hist), categorical_shift(name, 0.1)],
        statistic=[SeriesPoint(T0 + 60 * i, v, t) for i, (_, v, t) in enumerate(values)],
        performance=[PerformancePoint(*p) for p in perf],
    )
    page = Page(render(ev))  # every <svg> parses as XML
    for plot in page.svgs:
        assert_inside(plot)


def assert_inside(plot: ET.Element) -> None:
    """Every coordinate of every shape is a number inside the plot's own box."""
    width, height = float(plot.get("width", "0")), float(plot.get("height", "0"))
    for el in plot.iter():
        coords = [(k, el.get(k)) for k in ("x", "x1", "x2", "cx", "width")]
        coords += [(k, el.get(k)) for k in ("y", "y1", "y2", "cy", "height")]
        pairs = [p.split(",") for p in (el.get("points") or "").split()]
        coords += [("x", x) for x, _ in pairs] + [("y", y) for _, y in pairs]
        for key, value in coords:
            if value is None or el is plot:
                continue
            limit = width if key.startswith(("x", "cx", "w")) else height
            assert 0 <= float(value) <= limit, (el.tag, key, value)
