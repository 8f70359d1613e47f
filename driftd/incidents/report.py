"""An incident as one self-contained HTML page: inline CSS, inline SVG plots, no script, no
remote asset, so it opens from a Grafana link or an e-mail attachment with the network off.

``render`` is pure (the time it prints is passed in) and deterministic: the same evidence
gives the same bytes. All text from the evidence is escaped.

>>> from driftd.incidents.types import IncidentEvidence
>>> page = render(IncidentEvidence("i-1", "fraud v3: drift", "fraud", "3", "tx", "open",
...                                0.0, 60.0, 2, "training sample"))
>>> page.startswith("<!DOCTYPE html>") and 'data-plot="statistic"' not in page
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from urllib.parse import urlsplit

from driftd.incidents import svg
from driftd.incidents.types import FeatureShift, Histogram, IncidentEvidence
from driftd.textsafe import safe

TOP_FEATURES = 5  # reference-vs-current plots drawn; the table lists every ranked feature
_FEATURE_WIDTH, _SERIES_WIDTH = 520, 1040  # two feature plots a row; series span the page

# default-src 'none': the browser itself refuses any fetch the page might try to make.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_STATE_COLOURS = {"open": "#d62728", "acknowledged": "#e6a100", "resolved": "#2ca02c"}
_CSS = """
body { font-family: sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 28px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 10px; color: #fff;
         font-size: 13px; font-weight: bold; vertical-align: middle; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dl.meta dt { color: #666; } dl.meta dd { margin: 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #eee; padding: 4px 8px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figures { display: flex; flex-wrap: wrap; gap: 8px 24px; }
figure { margin: 12px 0; } figcaption { font-size: 13px; color: #444; }
.note { color: #666; font-style: italic; }
footer { margin-top: 32px; color: #888; font-size: 12px; }
"""


def _e(text: str) -> str:
    """Text for the page: controls and bidi overrides shown as escapes, then HTML-escaped."""
    return escape(safe(text))


def _utc(ts: float) -> str:
    if not math.isfinite(ts):
        return "\u2014"
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return svg.fmt(ts)


def _num(v: float) -> str:
    return svg.fmt(v) if math.isfinite(v) else "\u2014"


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _link(label: str, url: str) -> str:
    """An <a> for http(s) and relative URLs; any other scheme (javascript:, data:) as text."""
    scheme = urlsplit(url.strip()).scheme.lower()
    if scheme in ("", "http", "https"):
        return f'<a href="{_e(url)}">{_e(label)}</a>'
    return f"{_e(label)} ({_e(url)})"


def _header(ev: IncidentEvidence) -> str:
    colour = _STATE_COLOURS.get(ev.state, "#6b6b6b")
    rows = [
        ("Incident", _e(ev.incident_id)),
        ("Model", f"{_e(ev.model)} version {_e(ev.version)}"),
        ("Stream", _e(ev.stream)),
        ("Opened", _utc(ev.opened_ts)),
        ("Last alarm", _utc(ev.last_alarm_ts)),
        ("Alarms", str(ev.alarms)),
        ("Reference", _e(ev.reference)),
        ("Detectors", _e(", ".join(ev.detectors)) or "\u2014"),
    ]
    if ev.links:
        rows.append(("Links", " \u00b7 ".join(_link(label, url) for label, url in ev.links)))
    meta = "\n".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return (
        f'<header>\n<h1>{_e(ev.title)} <span class="badge" style="background:{colour}">'
        f'{_e(ev.state)}</span></h1>\n<dl class="meta">\n{meta}\n</dl>\n</header>'
    )


def _shift_row(s: FeatureShift) -> str:
    cells = [
        f"<td>{_e(s.feature)}</td>",
        f"<td>{_e(s.kind)}</td>",
        f'<td class="num">{_num(s.effect)}</td>',
        f'<td class="num">[{_num(s.lower)}, {_num(s.upper)}] ({_num(100 * s.confidence)} %)</td>',
        f"<td>{_e(s.effect_name)}</td>",
        f'<td class="num">{_num(s.p_value)}</td>',
        f'<td class="num">{s.n_reference} / {s.n_current}</td>',
        f"<td>{_e(s.summary)}</td>",
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _histogram_svg(name: str, h: Histogram) -> str | None:
    """Reference vs current: overlaid bars over numeric bins, paired bars for categories."""
    plot, title = f"feature:{name}", f"{name}: reference vs current distribution"
    if len(h.edges) >= 2 and len(h.edges) == len(h.reference) + 1 == len(h.current) + 1:
        # densities (fraction / bin width): quantile bins are of unequal width, and a wide
        # tail bin's fraction drawn as its height would look like a mode
        bins = [
            (lo, hi, r / (hi - lo), c / (hi - lo))
            for lo, hi, r, c in zip(h.edges, h.edges[1:], h.reference, h.current, strict=False)
            if svg.plottable(lo) and svg.plottable(hi) and hi > lo  # open-ended bins: not drawn
        ]
        if not bins:
            return None
        chart = svg.Chart(
            [b[0] for b in bins] + [b[1] for b in bins],
            [b[2] for b in bins] + [b[3] for b in bins],
            y_from_zero=True,
            width=_FEATURE_WIDTH,
        )
        chart.bars(
            [(lo, hi, r) for lo, hi, r, _ in bins],
            colour=svg.REFERENCE,
            label="reference",
            opacity=0.45,
        )
        chart.bars(
            [(lo, hi, c) for lo, hi, _, c in bins],
            colour=svg.CURRENT,
            label="current",
            opacity=0.45,
        )
        return chart.to_svg(plot=plot, title=title)
    if not h.edges and h.labels and len(h.labels) == len(h.reference) == len(h.current):
        series = [("reference", svg.REFERENCE, h.reference), ("current", svg.CURRENT, h.current)]
        return svg.categories_chart(h.labels, series, plot=plot, title=title, width=_FEATURE_WIDTH)
    return None


def _what_moved(ev: IncidentEvidence) -> str:
    if not ev.shifts:
        return _note("No feature shifts were computed for this incident.")
    head = (
        "<tr><th>Feature</th><th>Kind</th><th>Effect</th><th>Interval</th><th>Effect size</th>"
        "<th>p-value</th><th>n ref / cur</th><th>Summary</th></tr>"
    )
    table = f"<table>\n{head}\n" + "\n".join(_shift_row(s) for s in ev.shifts) + "\n</table>"
    figures = []
    for s in ev.shifts[:TOP_FEATURES]:
        plot = _histogram_svg(s.feature, s.histogram) if s.histogram is not None else None
        caption = f"<figcaption>{_e(s.feature)}: {_e(s.summary)}</figcaption>"
        body = plot if plot is not None else _note(f"No distribution to plot for {s.feature}.")
        figures.append(f"<figure>\n{body}\n{caption}\n</figure>")
    return f'{table}\n<div class="figures">\n' + "\n".join(figures) + "\n</div>"


def _statistic(ev: IncidentEvidence) -> str:
    pts = [p for p in ev.statistic if svg.plottable(p.ts) and svg.plottable(p.value)]
    if not pts:
        return _note("No statistic series was recorded for this incident.")
    thresholds = [(p.ts, p.threshold) for p in pts if p.threshold is not None]
    chart = svg.Chart(
        [p.ts for p in pts],
        [p.value for p in pts] + [t for _, t in thresholds],
        time_x=True,
        width=_SERIES_WIDTH,
    )
    chart.line([(p.ts, p.value) for p in pts], colour=svg.REFERENCE, label="statistic")
    if svg.finite(thresholds):
        chart.line(thresholds, colour=svg.MUTED, label="threshold", dash="6 3")
    alarms = [
        (p.ts, p.value)
        for p in pts
        if p.threshold is not None and svg.plottable(p.threshold) and p.value > p.threshold
    ]
    if alarms:
        chart.markers(alarms, colour=svg.ALARM, label="above threshold", css_class="alarm")
    title = f"{', '.join(ev.detectors) or 'detector'} statistic over time (UTC)"
    return chart.to_svg(plot="statistic", title=title)


def _performance(ev: IncidentEvidence) -> str:
    pts = [p for p in ev.performance if svg.plottable(p.ts) and svg.plottable(p.estimated)]
    if not pts:
        return _note("No performance estimate is available for this incident.")
    realised = [(p.ts, p.realised) for p in pts if p.realised is not None]
    bounded = [v for p in pts for v in (p.lower, p.upper)]
    chart = svg.Chart(
        [p.ts for p in pts],
        [p.estimated for p in pts] + bounded + [r for _, r in realised],
        time_x=True,
        width=_SERIES_WIDTH,
    )
    ts = [p.ts for p in pts]
    chart.band(
        ts,
        [p.lower for p in pts],
        [p.upper for p in pts],
        colour=svg.REFERENCE,
        label="estimate band",
    )
    chart.line([(p.ts, p.estimated) for p in pts], colour=svg.REFERENCE, label="estimated")
    if svg.finite(realised):
        chart.markers(realised, colour=svg.CURRENT, label="realised")
    metric = ev.performance_metric or "performance"
    return chart.to_svg(plot="performance", title=f"{metric}: estimated vs realised (UTC)")


def render(evidence: IncidentEvidence, *, generated_at: float | None = None) -> str:
    """The incident as one HTML5 document; ``generated_at`` (epoch seconds) goes in the footer."""
    ev = evidence
    footer = f"Generated {_utc(generated_at)} by driftd." if generated_at is not None else ""
    metric = f"Performance: {_e(ev.performance_metric)}" if ev.performance_metric else "Performance"
    parts: Sequence[str] = (
        "<!DOCTYPE html>",
        '<html lang="en">\n<head>\n<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(ev.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>",
        _header(ev),
        '<section id="what-moved">\n<h2>What moved</h2>',
        _what_moved(ev),
        '</section>\n<section id="statistic">\n<h2>Statistic over time</h2>',
        _statistic(ev),
        f'</section>\n<section id="performance">\n<h2>{metric}</h2>',
        _performance(ev),
        f"</section>\n<footer>{footer}</footer>\n</body>\n</html>\n",
    )
    return "\n".join(parts)
