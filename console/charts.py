"""Small server-rendered SVG charts (no JavaScript): columns, lines and horizontal bars.

Colours and fonts come from the stylesheet through class names (the page's CSP allows no
inline styles); every label is escaped; each mark has a <title> so hovering shows the value.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least `maximum` (1, 2 or 5 times a power of ten)."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(step, 1) if maximum >= 1 else step
    top = math.ceil(maximum / step) * step
    return [round(i * step, 6) for i in range(int(round(top / step)) + 1)]


def _fmt(value: float) -> str:
    return f"{value:g}" if value != int(value) else f"{int(value)}"


def _svg_open(width: int, height: int, label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg">'
    )


def _axes(parts: list[str], ticks: list[float], left: int, right: int, top: int,
          bottom: int) -> None:
    scale = (bottom - top) / ticks[-1]
    for tick in ticks:
        y = bottom - tick * scale
        parts.append(f'<line class="c-grid" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="c-tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_fmt(tick)}</text>"
        )


def _x_labels(parts: list[str], labels: Sequence[str], xs: list[float], y: float) -> None:
    every = max(1, math.ceil(len(labels) / 10))  # at most about ten labels fit
    for i, (label, x) in enumerate(zip(labels, xs, strict=True)):
        if i % every == 0 or i == len(labels) - 1 and len(labels) <= 10:
            parts.append(
                f'<text class="c-tick" x="{x:.1f}" y="{y}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )


def _legend(parts: list[str], series: Sequence[Series], x: int, y: int) -> None:
    for i, s in enumerate(series):
        parts.append(f'<rect class="c-s{i}" x="{x}" y="{y - 9}" width="10" height="10" rx="2"/>')
        parts.append(f'<text class="c-legend" x="{x + 14}" y="{y}">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)


def columns(labels: Sequence[str], series: Sequence[Series], *, title: str,
            width: int = 720, height: int = 240) -> Markup:
    """Grouped vertical columns, one group per label (e.g. per day)."""
    left, right, top, bottom = 40, width - 10, 28, height - 28
    peak = max((v for s in series for v in s.values), default=0)
    ticks = nice_ticks(peak)
    scale = (bottom - top) / ticks[-1]
    parts = [_svg_open(width, height, title)]
    _axes(parts, ticks, left, right, top, bottom)
    n = max(len(labels), 1)
    slot = (right - left) / n
    bar = max(1.0, slot * 0.8 / max(len(series), 1))
    xs = []
    for i, label in enumerate(labels):
        x0 = left + i * slot + slot * 0.1
        xs.append(left + i * slot + slot / 2)
        for k, s in enumerate(series):
            value = s.values[i]
            h = value * scale
            parts.append(
                f'<rect class="c-s{k}" x="{x0 + k * bar:.1f}" y="{bottom - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}"><title>{escape(label)} · '
                f"{escape(s.name)}: {_fmt(value)}</title></rect>"
            )
    _x_labels(parts, labels, xs, bottom + 18)
    _legend(parts, series, left, 14)
    parts.append("</svg>")
    return Markup("".join(parts))


def lines(labels: Sequence[str], series: Sequence[Series], *, title: str,
          width: int = 720, height: int = 240) -> Markup:
    """One polyline per series over the labels (e.g. days), with a dot per point."""
    left, right, top, bottom = 40, width - 14, 28, height - 28
    peak = max((v for s in series for v in s.values), default=0)
    ticks = nice_ticks(peak)
    scale = (bottom - top) / ticks[-1]
    n = len(labels)
    step = (right - left) / max(n - 1, 1)
    xs = [left + i * step for i in range(n)]
    parts = [_svg_open(width, height, title)]
    _axes(parts, ticks, left, right, top, bottom)
    for k, s in enumerate(series):
        points = " ".join(f"{x:.1f},{bottom - v * scale:.1f}" for x, v in zip(xs, s.values, strict=False))
        parts.append(f'<polyline class="c-line c-l{k}" points="{points}"/>')
        for x, v, label in zip(xs, s.values, labels, strict=False):
            parts.append(
                f'<circle class="c-s{k}" cx="{x:.1f}" cy="{bottom - v * scale:.1f}" r="3">'
                f"<title>{escape(label)} · {escape(s.name)}: {_fmt(v)}</title></circle>"
            )
    _x_labels(parts, labels, xs, bottom + 18)
    _legend(parts, series, left, 14)
    parts.append("</svg>")
    return Markup("".join(parts))


def hbars(items: Sequence[tuple[str, float]], *, title: str, width: int = 720,
          note: Sequence[str] | None = None, label_width: int = 200) -> Markup:
    """Horizontal bars with their value at the end; `note` adds text after each value."""
    row = 30
    height = max(row * len(items) + 10, 40)
    left, right = label_width, width - 90
    peak = max((v for _, v in items), default=0) or 1
    parts = [_svg_open(width, height, title)]
    if not items:
        parts.append(f'<text class="c-empty" x="{width / 2}" y="24" text-anchor="middle">'
                     "No data yet</text>")
    for i, (label, value) in enumerate(items):
        y = 6 + i * row
        w = (right - left) * value / peak
        text = label if len(label) <= 30 else label[:29] + "…"
        parts.append(
            f'<text class="c-label" x="{left - 8}" y="{y + 15}" text-anchor="end">'
            f"{escape(text)}<title>{escape(label)}</title></text>"
        )
        parts.append(
            f'<rect class="c-s0" x="{left}" y="{y}" width="{max(w, 1):.1f}" height="20" rx="3">'
            f"<title>{escape(label)}: {_fmt(value)}</title></rect>"
        )
        extra = f" · {note[i]}" if note else ""
        parts.append(
            f'<text class="c-value" x="{left + w + 6:.1f}" y="{y + 15}">'
            f"{_fmt(value)}{escape(extra)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
