"""Charts drawn on the server as SVG: a model's scores and payouts over rounds.

SVG needs no script and no download, scales to any screen (viewBox, width 100%), is styled by the
page's CSS classes (colours live in app.css), and every point carries a <title> tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

W, H = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 34, 36


@dataclass(frozen=True)
class Series:
    """One line: a value per x position (None where the model has no score), optional interval."""

    name: str
    values: Sequence[float | None]
    lows: Sequence[float | None] | None = None
    highs: Sequence[float | None] | None = None


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 0.5:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _x_positions(n: int) -> list[float]:
    width = W - LEFT - RIGHT
    if n == 1:
        return [LEFT + width / 2]
    pad = min(24.0, width / (2 * n))
    return [LEFT + pad + i * (width - 2 * pad) / (n - 1) for i in range(n)]


def _frame(
    title: str,
    labels: Sequence[str],
    ticks: list[float],
    y: Callable[[float], float],
    fmt: Callable[[float], str],
    xs: list[float],
) -> list[str]:
    parts = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
        'preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
    ]
    for t in ticks:
        parts.append(
            f'<line class="grid{" zero" if t == 0 else ""}" x1="{LEFT}" x2="{W - RIGHT}" '
            f'y1="{y(t):.1f}" y2="{y(t):.1f}"/>'
        )
        parts.append(f'<text class="tick" x="{LEFT - 8}" y="{y(t) + 4:.1f}" text-anchor="end">{escape(fmt(t))}</text>')
    every = max(1, math.ceil(len(labels) / 12))
    for i, (x, label) in enumerate(zip(xs, labels, strict=True)):
        if i % every == 0 or i == len(labels) - 1:
            parts.append(f'<text class="tick" x="{x:.1f}" y="{H - 10}" text-anchor="middle">{escape(label)}</text>')
    return parts


def _scale(ticks: list[float]) -> Callable[[float], float]:
    low, high = ticks[0], ticks[-1]
    span = (high - low) or 1.0
    return lambda v: TOP + (H - TOP - BOTTOM) * (1 - (v - low) / span)


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], fmt: Callable[[float], str] = lambda v: f"{v:.3f}"
) -> str:
    """Lines with dots (and interval whiskers where given), one per series, legend on top."""
    values = [
        v
        for s in series
        for seq in (s.values, s.lows or (), s.highs or ())
        for v in seq
        if v is not None and math.isfinite(v)
    ]
    if not values or not labels:
        return f'<p class="empty">No {escape(title.lower())} yet.</p>'
    ticks = nice_ticks(min(*values, 0.0), max(*values, 0.0))
    y = _scale(ticks)
    xs = _x_positions(len(labels))
    parts = _frame(title, labels, ticks, y, fmt, xs)
    for k, s in enumerate(series):
        css = f"s{k + 1}"
        parts.append(f'<g class="series {css}">')
        run: list[str] = []
        for i, v in enumerate(s.values):
            if v is None or not math.isfinite(v):
                if len(run) > 1:
                    parts.append(f'<polyline class="line" points="{" ".join(run)}"/>')
                run = []
                continue
            run.append(f"{xs[i]:.1f},{y(v):.1f}")
        if len(run) > 1:
            parts.append(f'<polyline class="line" points="{" ".join(run)}"/>')
        for i, v in enumerate(s.values):
            if v is None or not math.isfinite(v):
                continue
            lo = s.lows[i] if s.lows else None
            hi = s.highs[i] if s.highs else None
            tip = f"{labels[i]} · {s.name} {fmt(v)}"
            if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
                parts.append(f'<line class="ci" x1="{xs[i]:.1f}" x2="{xs[i]:.1f}" y1="{y(lo):.1f}" y2="{y(hi):.1f}"/>')
                tip += f" [{fmt(lo)}, {fmt(hi)}]"
            parts.append(
                f'<circle class="dot" cx="{xs[i]:.1f}" cy="{y(v):.1f}" r="4"><title>{escape(tip)}</title></circle>'
            )
        parts.append("</g>")
        lx = LEFT + k * 110
        parts.append(
            f'<g class="legend {css}"><rect x="{lx}" y="6" width="14" height="14" rx="3"/>'
            f'<text x="{lx + 20}" y="18">{escape(s.name)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[int],
    fmt: Callable[[float], str],
    tip: Callable[[float], str] | None = None,
) -> str:
    """Bars from a zero line: gains up, burns (negative payouts) down in another colour.

    ``fmt`` labels the axis (short), ``tip`` the tooltip of each bar (exact; ``fmt`` by default).
    """
    tip = tip or fmt
    if not values or not any(values):
        return f'<p class="empty">No {escape(title.lower())} yet.</p>'
    ticks = nice_ticks(float(min(*values, 0)), float(max(*values, 0)))
    y = _scale(ticks)
    xs = _x_positions(len(labels))
    parts = _frame(title, labels, ticks, y, fmt, xs)
    width = min(36.0, (W - LEFT - RIGHT) / len(values) * 0.6)
    zero = y(0.0)
    for x, label, v in zip(xs, labels, values, strict=True):
        top, bottom = sorted((y(float(v)), zero))
        css = "bar neg" if v < 0 else "bar pos"
        parts.append(
            f'<rect class="{css}" x="{x - width / 2:.1f}" y="{top:.1f}" width="{width:.1f}" '
            f'height="{max(bottom - top, 1.0):.1f}" rx="2"><title>{escape(label)} · {escape(tip(v))}'
            "</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)
