"""Small inline SVG charts, so a report needs no script, font or network.

Examples
--------
>>> svg = line_chart("events", {"v1": [(0, 1.0), (60_000, 3.0)]}, x_range=(0, 60_000))
>>> svg.startswith("<svg") and "polyline" in svg
True
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from types import MappingProxyType

__all__ = ["PALETTE", "SEVERITY_COLOURS", "bar_chart", "line_chart"]

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf")
SEVERITY_COLOURS = MappingProxyType({"info": "#9ecae1", "low": "#74c476", "medium": "#fdae6b",
                                     "high": "#e6550d", "critical": "#a50f15"})
_W, _H, _L, _R, _T, _B = 860, 220, 60, 150, 28, 30


def _x_label(ts_ms: int, span_ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC)
    return moment.strftime("%m-%d %H:%M" if span_ms < 3 * 86_400_000 else "%Y-%m-%d")


def _frame(title: str, x_range: tuple[int, int], y_max: float) -> list[str]:
    x0, x1 = x_range
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
             f'role="img" aria-label="{html.escape(title)}">',
             f'<text x="{_L}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
             f'<rect x="{_L}" y="{_T}" width="{_W - _L - _R}" height="{_H - _T - _B}" fill="none" stroke="#ccc"/>']
    for i in range(5):
        y = _T + (_H - _T - _B) * i / 4
        parts.append(f'<text x="{_L - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
                     f'{y_max * (1 - i / 4):.3g}</text>')
    for i in range(5):
        ts = x0 + (x1 - x0) * i / 4
        x = _L + (_W - _L - _R) * i / 4
        parts.append(f'<text x="{x:.1f}" y="{_H - 10}" font-size="10" text-anchor="middle">'
                     f'{_x_label(int(ts), x1 - x0)}</text>')
    return parts


def _scale(x_range: tuple[int, int], y_max: float) -> tuple[float, float, float]:
    span = max(x_range[1] - x_range[0], 1)
    return (_W - _L - _R) / span, (_H - _T - _B) / (y_max or 1.0), float(x_range[0])


def line_chart(title: str, series: Mapping[str, Sequence[tuple[int, float]]], *, x_range: tuple[int, int],
               markers: Sequence[tuple[int, str, str]] = ()) -> str:
    """Lines (one per series) with vertical markers (time, label, colour)."""
    y_max = max((y for points in series.values() for _, y in points), default=1.0) * 1.05 or 1.0
    sx, sy, x0 = _scale(x_range, y_max)
    parts = _frame(title, x_range, y_max)
    for ts, label, colour in markers:
        x = _L + (ts - x0) * sx
        parts.append(f'<line x1="{x:.1f}" y1="{_T}" x2="{x:.1f}" y2="{_H - _B}" stroke="{colour}" '
                     f'stroke-dasharray="3,3"><title>{html.escape(label)}</title></line>')
    for index, (name, points) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        coords = " ".join(f"{_L + (ts - x0) * sx:.1f},{_H - _B - y * sy:.1f}" for ts, y in points)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>')
        parts.append(f'<text x="{_W - _R + 8}" y="{_T + 12 + 14 * index}" font-size="11" fill="{colour}">'
                     f'{html.escape(name[:22])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, stacks: Mapping[str, Sequence[tuple[int, float]]], *, x_range: tuple[int, int],
              bucket_ms: int, colours: Mapping[str, str]) -> str:
    """Stacked bars per time bucket; ``stacks`` maps a layer name to (bucket start, value)."""
    totals: dict[int, float] = {}
    for points in stacks.values():
        for ts, value in points:
            totals[ts] = totals.get(ts, 0.0) + value
    y_max = max(totals.values(), default=1.0) * 1.05 or 1.0
    sx, sy, x0 = _scale(x_range, y_max)
    width = max(bucket_ms * sx - 1, 1.0)
    parts = _frame(title, x_range, y_max)
    base: dict[int, float] = {}
    for index, (name, points) in enumerate(stacks.items()):
        colour = colours.get(name, PALETTE[index % len(PALETTE)])
        for ts, value in points:
            bottom = base.get(ts, 0.0)
            base[ts] = bottom + value
            parts.append(f'<rect x="{_L + (ts - x0) * sx:.1f}" y="{_H - _B - (bottom + value) * sy:.1f}" '
                         f'width="{width:.1f}" height="{value * sy:.1f}" fill="{colour}">'
                         f'<title>{html.escape(name)}: {value:g}</title></rect>')
        parts.append(f'<text x="{_W - _R + 8}" y="{_T + 12 + 14 * index}" font-size="11" fill="{colour}">'
                     f'{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
