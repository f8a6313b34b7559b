"""Inline SVG charts, drawn here so the report needs no script and no network to open.

Every chart has a title and labelled axes, and is only drawn with data: callers show a
"no data yet" note instead of an empty chart (each function refuses empty input).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date
from html import escape

PALETTE = ("#2f6fb0", "#e07b39", "#3a9a5b", "#c0392b", "#8e5bb5", "#7f8c8d", "#b8860b", "#17a2b8")
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'
Format = Callable[[float], str]


def nice_ticks(low: float, high: float, count: int = 5, whole: bool = False) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5 or 5 times a power of ten apart; `whole`: at
    least 1 apart and never 2.5, for counts)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(count, 1)
    if whole:
        raw = max(raw, 1.0)
    power = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if whole else (1, 2, 2.5, 5, 10)
    step = next(m * power for m in steps if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _open(title: str, width: int, height: int) -> list[str]:
    return [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" {FONT} font-size="12">',
            f"<title>{escape(title)}</title>",
            f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="600">{escape(title)}</text>']


def _x_label(text: str, width: int, height: int) -> str:
    return f'<text x="{width / 2}" y="{height - 6}" text-anchor="middle" fill="#444">{escape(text)}</text>'


def _y_label(text: str, height: int, x: int = 14) -> str:
    return (f'<text x="{x}" y="{height / 2}" text-anchor="middle" fill="#444" '
            f'transform="rotate(-90 {x} {height / 2})">{escape(text)}</text>')


def interval_chart(title: str, rows: Sequence[tuple[str, float, float | None, float | None, bool]], *,
                   x_label: str, y_label: str, fmt: Format) -> str:
    """Estimates with their intervals, one row each: (label, estimate, low, high, muted); a line at zero."""
    if not rows:
        raise ValueError("interval_chart needs at least one row")
    width, left, right, top, row_h = 760, 200, 30, 40, 30
    height = top + row_h * len(rows) + 60
    values = [v for _, e, lo, hi, _ in rows for v in (e, lo, hi) if v is not None] + [0.0]
    ticks = nice_ticks(min(values), max(values))
    lo_t, hi_t = ticks[0], ticks[-1]

    def x(v: float) -> float:
        return left + (v - lo_t) / (hi_t - lo_t) * (width - left - right)

    out = _open(title, width, height)
    bottom = top + row_h * len(rows)
    for t in ticks:
        out.append(f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{bottom}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{x(t):.1f}" y="{bottom + 16}" text-anchor="middle" fill="#555">{escape(fmt(t))}</text>')
    out.append(f'<line x1="{x(0):.1f}" y1="{top - 4}" x2="{x(0):.1f}" y2="{bottom}" stroke="#333" '
               f'stroke-dasharray="4 3"/>')
    for i, (label, estimate, low, high, muted) in enumerate(rows):
        y = top + row_h * i + row_h / 2
        colour = "#9aa5b1" if muted else PALETTE[0]
        out.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{escape(label)}</text>')
        if low is not None and high is not None:
            out.append(f'<line x1="{x(low):.1f}" y1="{y}" x2="{x(high):.1f}" y2="{y}" stroke="{colour}" '
                       f'stroke-width="3"><title>{escape(f"{label}: {fmt(low)} to {fmt(high)}")}</title></line>')
        out.append(f'<circle cx="{x(estimate):.1f}" cy="{y}" r="5" fill="{colour}">'
                   f'<title>{escape(f"{label}: {fmt(estimate)}")}</title></circle>')
    out.append(_x_label(x_label, width, height))
    out.append(_y_label(y_label, height))
    out.append("</svg>")
    return "\n".join(out)


def line_chart(title: str, series: dict[str, Sequence[tuple[date, float]]], *, x_label: str, y_label: str,
               fmt: Format, whole: bool = False) -> str:
    """One line per series over dates, with a legend; a single point is drawn as a dot; `whole`: the values
    are counts, so are the ticks."""
    points = [p for values in series.values() for p in values]
    if not points:
        raise ValueError("line_chart needs at least one point")
    width, left, right, top = 760, 80, 50, 40
    legend_h = 18 * len(series)
    plot_h = 240
    height = top + plot_h + 62 + legend_h
    days = [p[0].toordinal() for p in points]
    first, last = min(days), max(days)
    if first == last:
        first, last = first - 1, last + 1
    ticks = nice_ticks(0, max(p[1] for p in points) or 1, whole=whole)

    def x(d: date) -> float:
        return left + (d.toordinal() - first) / (last - first) * (width - left - right)

    def y(v: float) -> float:
        return top + plot_h - v / ticks[-1] * plot_h

    out = _open(title, width, height)
    for t in ticks:
        out.append(f'<line x1="{left}" y1="{y(t):.1f}" x2="{width - right}" y2="{y(t):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end" fill="#555">{escape(fmt(t))}</text>')
    step = max(1, (last - first) // 6)
    for ordinal in range(first, last + 1, step):
        d = date.fromordinal(ordinal)
        out.append(f'<text x="{x(d):.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="#555">'
                   f'{d:%d %b}</text>')
    for i, (name, values) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        ordered = sorted(values)
        if len(ordered) > 1:
            path = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in ordered)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for d, v in ordered:
            out.append(f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
                       f'<title>{escape(f"{name}, {d:%Y-%m-%d}: {fmt(v)}")}</title></circle>')
        ly = top + plot_h + 54 + 18 * i
        out.append(f'<rect x="{left}" y="{ly - 9}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{left + 18}" y="{ly + 1}">{escape(name)}</text>')
    out.append(_x_label(x_label, width, top + plot_h + 36 + 2))
    out.append(_y_label(y_label, top * 2 + plot_h))
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(title: str, bars: Sequence[tuple[str, float, str]], *, x_label: str, y_label: str, fmt: Format) -> str:
    """Horizontal bars: (label, value, note shown after the value)."""
    if not bars:
        raise ValueError("bar_chart needs at least one bar")
    width, left, right, top, row_h = 760, 220, 200, 40, 34
    height = top + row_h * len(bars) + 50
    ticks = nice_ticks(0, max(v for _, v, _ in bars) or 1)

    def x(v: float) -> float:
        return left + v / ticks[-1] * (width - left - right)

    out = _open(title, width, height)
    bottom = top + row_h * len(bars)
    for t in ticks:
        out.append(f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{bottom}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{x(t):.1f}" y="{bottom + 16}" text-anchor="middle" fill="#555">{escape(fmt(t))}</text>')
    for i, (label, value, note) in enumerate(bars):
        y = top + row_h * i + 5
        out.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{max(x(value) - left, 1):.1f}" height="{row_h - 10}" '
                   f'fill="{PALETTE[0]}"><title>{escape(f"{label}: {fmt(value)}")}</title></rect>')
        out.append(f'<text x="{x(value) + 6:.1f}" y="{y + 16}" fill="#333">{escape(fmt(value))} {escape(note)}</text>')
    out.append(_x_label(x_label, width, height))
    out.append(_y_label(y_label, height))
    out.append("</svg>")
    return "\n".join(out)


def stacked_bar_chart(title: str, rows: Sequence[tuple[str, dict[str, float]]], segments: Sequence[tuple[str, str]],
                      *, x_label: str, y_label: str, fmt: Format) -> str:
    """Horizontal stacked bars, one per row; `segments` are (name, colour) in stacking order, with a legend."""
    if not rows:
        raise ValueError("stacked_bar_chart needs at least one row")
    width, left, right, top, row_h = 760, 240, 30, 40, 30
    # The legend flows over as many lines as its entries need (about 7 px a character).
    legend: list[tuple[float, int, str, str]] = []
    lx, line = float(left), 0
    for name, colour in segments:
        entry = 30 + 7 * len(name)
        if lx + entry > width and lx > left:
            lx, line = float(left), line + 1
        legend.append((lx, line, name, colour))
        lx += entry
    height = top + row_h * len(rows) + 80 + 20 * line
    ticks = nice_ticks(0, max(sum(parts.values()) for _, parts in rows) or 1)

    def x(v: float) -> float:
        return left + v / ticks[-1] * (width - left - right)

    out = _open(title, width, height)
    bottom = top + row_h * len(rows)
    for t in ticks:
        out.append(f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{bottom}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{x(t):.1f}" y="{bottom + 16}" text-anchor="middle" fill="#555">{escape(fmt(t))}</text>')
    for i, (label, parts) in enumerate(rows):
        y = top + row_h * i + 4
        out.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        start = 0.0
        for name, colour in segments:
            value = parts.get(name, 0) or 0
            if value:
                out.append(f'<rect x="{x(start):.1f}" y="{y}" width="{max(x(start + value) - x(start), 1):.1f}" '
                           f'height="{row_h - 8}" fill="{colour}"><title>{escape(f"{label}, {name}: {fmt(value)}")}'
                           f'</title></rect>')
            start += value
    out.append(f'<text x="{width / 2}" y="{bottom + 36}" text-anchor="middle" fill="#444">{escape(x_label)}</text>')
    for lx, line, name, colour in legend:
        ly = bottom + 52 + 20 * line
        out.append(f'<rect x="{lx:.0f}" y="{ly}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{lx + 18:.0f}" y="{ly + 10}">{escape(name)}</text>')
    out.append(_y_label(y_label, height))
    out.append("</svg>")
    return "\n".join(out)
