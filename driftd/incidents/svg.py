"""A small inline-SVG chart: axes, ticks, lines, markers, bars, bands, threshold lines, a legend.

Pure string building for the incident report: no I/O, no ids, no randomness, so the same
input gives the same bytes. Non-finite values are skipped; every piece of text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape

from driftd.textsafe import safe

Point = tuple[float, float]

REFERENCE = "#4c78a8"  # blue
CURRENT = "#f58518"  # orange
ALARM = "#d62728"  # red
MUTED = "#6b6b6b"

_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)
_DAY = 86400
LIMIT = 1e300
_TINY = 1e-290


def fmt(v: float) -> str:
    """A number with 3 significant figures, short exponents: 0.123, 45.6, 1.23e9."""
    if v == 0:
        return "0"
    s = f"{v:.3g}"
    if "e" in s:
        mant, exp = s.split("e")
        s = f"{mant}e{int(exp)}"
    return s


def utc_label(ts: float, step: float) -> str:
    """A UTC time label as fine as the tick step needs; the number itself when out of range."""
    try:
        t = datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError, ValueError):
        return fmt(ts)
    if step < 60:
        return t.strftime("%H:%M:%S")
    if step < _DAY:
        return t.strftime("%m-%d %H:%M") if step >= 3 * 3600 else t.strftime("%H:%M")
    return t.strftime("%Y-%m-%d")


def _e(text: str) -> str:
    return escape(safe(text))


def plottable(v: float) -> bool:
    """Finite and at most 1e300 in size, so that spans and paddings stay finite."""
    return math.isfinite(v) and abs(v) <= LIMIT


def finite(points: Iterable[Point]) -> list[Point]:
    """The points that can be drawn."""
    return [(x, y) for x, y in points if plottable(x) and plottable(y)]


def _span(values: Iterable[float], pad: float | None = None) -> tuple[float, float]:
    """The range of the plottable values, widened around its middle when it is empty or too
    narrow for floating point to tell its ends apart (one value, or 1e12 and 1e12 + 1e-6)."""
    vals = [v for v in values if plottable(v)]
    lo, hi = min(vals, default=0.0), max(vals, default=1.0)
    if hi - lo > max(1e-9 * max(abs(lo), abs(hi)), _TINY):
        return lo, hi
    mid = lo / 2 + hi / 2
    wide = max(pad or 0.0, abs(mid) * (0.1 if pad is None else 1e-6))
    return mid - (wide if wide > _TINY else 1.0), mid + (wide if wide > _TINY else 1.0)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart)."""
    if not (plottable(lo) and plottable(hi) and hi - lo > _TINY):
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step)
    slack = step * 1e-9  # k * step may miss an end by a rounding error
    ticks = [k * step for k in range(first, first + n + 3)]
    return [t for t in ticks if lo - slack <= t <= hi + slack] or [lo]


def time_ticks(lo: float, hi: float, n: int = 6) -> tuple[list[float], float]:
    """Tick times at round UTC steps (seconds to days) and the step chosen."""
    raw = (hi - lo) / n
    step = next((float(s) for s in _TIME_STEPS if s >= raw), 0.0)
    if step == 0.0:
        days = nice_ticks(0.0, raw * n / _DAY, n)
        step = max(days[1] - days[0], 1.0) * _DAY if len(days) > 1 else float(_DAY)
    first = math.ceil(lo / step)
    count = int((hi - first * step) // step) + 1 if plottable(hi - first * step) else 0
    return [(first + k) * step for k in range(max(min(count, 50), 0))], step


class Chart:
    """One plot area with linear x and y scales; add layers, then ``to_svg``."""

    def __init__(
        self,
        xs: Iterable[float],
        ys: Iterable[float],
        *,
        width: int = 640,
        height: int = 240,
        time_x: bool = False,
        y_from_zero: bool = False,
        x_categories: Sequence[str] = (),
    ) -> None:
        fy = [*ys, *([0.0] if y_from_zero else [])]
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = 64, 16, 12, 40
        # One moment in time gets ten minutes around it, not +-10 % of the epoch.
        x_pad = 300.0 if time_x else None
        self.x_lo, self.x_hi = _span(xs, x_pad)
        y_lo, y_hi = _span(fy)
        self.y_lo, self.y_hi = y_lo, y_hi + (y_hi - y_lo) * 0.08  # headroom above the top
        self.time_x = time_x
        self.x_categories = list(x_categories)
        self._layers: list[str] = []
        self._legend: list[tuple[str, str, str]] = []  # (label, colour, shape)

    def x(self, v: float) -> float:
        t = (v - self.x_lo) / (self.x_hi - self.x_lo)
        return round(self.left + t * (self.width - self.left - self.right), 2)

    def y(self, v: float) -> float:
        t = (v - self.y_lo) / (self.y_hi - self.y_lo)
        return round(self.height - self.bottom - t * (self.height - self.top - self.bottom), 2)

    def _legend_entry(self, label: str | None, colour: str, shape: str) -> None:
        if label is not None:
            self._legend.append((label, colour, shape))

    def line(
        self, points: Sequence[Point], *, colour: str, label: str | None = None, dash: str = ""
    ) -> None:
        """A polyline, broken where a value is missing (non-finite)."""
        segments: list[list[Point]] = [[]]
        for x, y in points:
            if plottable(x) and plottable(y):
                segments[-1].append((x, y))
            elif segments[-1]:
                segments.append([])
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        for seg in segments:
            if len(seg) == 1:
                self.markers(seg, colour=colour, radius=2.5)
            elif seg:
                pts = " ".join(f"{self.x(x)},{self.y(y)}" for x, y in seg)
                self._layers.append(
                    f'<polyline points="{pts}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"{dash_attr}/>'
                )
        self._legend_entry(label, colour, "dash" if dash else "line")

    def markers(
        self,
        points: Sequence[Point],
        *,
        colour: str,
        label: str | None = None,
        radius: float = 4.0,
        css_class: str = "",
    ) -> None:
        cls = f' class="{_e(css_class)}"' if css_class else ""
        for x, y in finite(points):
            self._layers.append(
                f'<circle{cls} cx="{self.x(x)}" cy="{self.y(y)}" r="{radius}" fill="{colour}"/>'
            )
        self._legend_entry(label, colour, "dot")

    def bars(
        self,
        bars: Sequence[tuple[float, float, float]],
        *,
        colour: str,
        label: str | None = None,
        opacity: float = 1.0,
    ) -> None:
        """Bars from y=0 (or the bottom of the axis) up to y, between x0 and x1."""
        base = self.y(max(self.y_lo, 0.0))
        for x0, x1, y in bars:
            if not (plottable(x0) and plottable(x1) and plottable(y)):
                continue
            top = self.y(y)
            left, right = self.x(min(x0, x1)), self.x(max(x0, x1))
            self._layers.append(
                f'<rect x="{left}" y="{min(top, base)}" width="{round(right - left, 2)}" '
                f'height="{round(abs(base - top), 2)}" fill="{colour}" fill-opacity="{opacity}"/>'
            )
        self._legend_entry(label, colour, "box")

    def band(
        self,
        xs: Sequence[float],
        lower: Sequence[float],
        upper: Sequence[float],
        *,
        colour: str,
        label: str | None = None,
    ) -> None:
        """A shaded polygon between lower and upper; broken where a value is missing."""
        runs: list[list[tuple[float, float, float]]] = [[]]
        for x, lo, hi in zip(xs, lower, upper, strict=True):
            if plottable(x) and plottable(lo) and plottable(hi):
                runs[-1].append((x, lo, hi))
            elif runs[-1]:
                runs.append([])
        for run in runs:
            if len(run) < 2:
                continue
            edge = [(x, hi) for x, _, hi in run] + [(x, lo) for x, lo, _ in reversed(run)]
            pts = " ".join(f"{self.x(x)},{self.y(y)}" for x, y in edge)
            self._layers.append(
                f'<polygon points="{pts}" fill="{colour}" fill-opacity="0.2" stroke="none"/>'
            )
        self._legend_entry(label, colour, "box")

    def _axes(self) -> list[str]:
        x0, x1 = self.left, self.width - self.right
        y0, y1 = self.height - self.bottom, self.top
        out = [
            f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="{MUTED}"/>',
            f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="{MUTED}"/>',
        ]
        for t in nice_ticks(self.y_lo, self.y_hi):
            yy = self.y(t)
            if not y1 - 0.5 <= yy <= y0 + 0.5:
                continue
            out.append(f'<line x1="{x0 - 4}" y1="{yy}" x2="{x1}" y2="{yy}" stroke="#e5e5e5"/>')
            out.append(f'<text x="{x0 - 6}" y="{yy + 4}" text-anchor="end">{fmt(t)}</text>')
        ticks: list[tuple[float, str]]
        if self.x_categories:
            every = max(1, math.ceil(len(self.x_categories) / 12))
            ticks = [(i + 0.5, c) for i, c in enumerate(self.x_categories) if i % every == 0]
            ticks = [(x, c if len(c) <= 14 else c[:13] + "\u2026") for x, c in ticks]
        elif self.time_x:
            times, step = time_ticks(self.x_lo, self.x_hi)
            ticks = [(t, utc_label(t, step)) for t in times]
            out.append(f'<text x="{x1}" y="{y0 + 30}" text-anchor="end">UTC</text>')
        else:
            ticks = [(t, fmt(t)) for t in nice_ticks(self.x_lo, self.x_hi, 6)]
        for t, text in ticks:
            xx = self.x(t)
            if not x0 - 0.5 <= xx <= x1 + 0.5:
                continue
            out.append(f'<line x1="{xx}" y1="{y0}" x2="{xx}" y2="{y0 + 4}" stroke="{MUTED}"/>')
            out.append(f'<text x="{xx}" y="{y0 + 16}" text-anchor="middle">{_e(text)}</text>')
        return out

    def _legend_svg(self, y: float) -> list[str]:
        out, x = [], float(self.left)
        for label, colour, shape in self._legend:
            if shape == "dot":
                out.append(f'<circle cx="{x + 6}" cy="{y - 4}" r="4" fill="{colour}"/>')
            elif shape == "box":
                out.append(
                    f'<rect x="{x}" y="{y - 9}" width="12" height="10" fill="{colour}" '
                    'fill-opacity="0.6"/>'
                )
            else:
                dash = ' stroke-dasharray="6 3"' if shape == "dash" else ""
                out.append(
                    f'<line x1="{x}" y1="{y - 4}" x2="{x + 12}" y2="{y - 4}" stroke="{colour}" '
                    f'stroke-width="2"{dash}/>'
                )
            out.append(f'<text x="{x + 16}" y="{y}">{_e(label)}</text>')
            x += 28 + 7 * len(label)
        return out

    def to_svg(self, *, plot: str, title: str) -> str:
        """The chart as one <svg data-plot=...> element with a <title>."""
        height = self.height + (18 if self._legend else 0)  # the legend sits under the x labels
        legend = self._legend_svg(height - 6)
        body = "\n".join([*self._axes(), *self._layers, *legend])
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" data-plot="{_e(plot)}" '
            f'width="{self.width}" height="{height}" viewBox="0 0 {self.width} {height}" '
            f'font-family="sans-serif" font-size="11">\n<title>{_e(title)}</title>\n'
            f"{body}\n</svg>"
        )


def categories_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    *,
    plot: str,
    title: str,
    width: int = 640,
) -> str:
    """Side-by-side bars per category, one bar per (name, colour, values) series."""
    values = [v for _, _, vs in series for v in vs]
    chart = Chart(
        [0.0, float(len(labels))], values, width=width, y_from_zero=True, x_categories=labels
    )
    k = max(len(series), 1)
    for j, (name, colour, vs) in enumerate(series):
        bars = [(i + 0.1 + 0.8 * j / k, i + 0.1 + 0.8 * (j + 1) / k, v) for i, v in enumerate(vs)]
        chart.bars(bars, colour=colour, label=name, opacity=0.85)
    return chart.to_svg(plot=plot, title=title)
