"""Small charts drawn as SVG on the server, like the DAG: no JavaScript, no library, a string.

``merge_cost_chart``: per bar (a ticket, or a merge attempt) the time spent merging as a bar on the left
axis and the LLM cost as a dot on the right axis, each bar a link with a tooltip.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from html import escape

BAR_W = 18
GAP = 8
HEIGHT = 120
PAD_LEFT = 60
MIN_PLOT_W = 180  # room for the legend under a chart of one or two bars
PAD_RIGHT = 56
PAD_TOP = 12
PAD_BOTTOM = 34
TICKS = 3


@dataclass(frozen=True)
class Bar:
    label: str
    href: str
    merge_ms: int
    llm_usd: Decimal | float
    title: str = ""


def _nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 × 10ⁿ at or above ``value``: round axis labels."""
    if value <= 0:
        return 1.0
    step = 10 ** len(str(int(value))) / 100 if value >= 1 else 0.01
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _ms(value: float) -> str:
    return f"{value / 1000:.3g} s" if value >= 1000 else f"{value:.3g} ms"


def merge_cost_chart(bars: list[Bar], label: str) -> str:
    """An ``<svg>`` of merge time (bars, left axis) and LLM cost (dots, right axis) per bar."""
    if not bars:
        return ""
    max_ms = _nice_max(max(b.merge_ms for b in bars))
    max_usd = _nice_max(float(max(b.llm_usd for b in bars)))
    plot_w = max(len(bars) * (BAR_W + GAP) + GAP, MIN_PLOT_W)
    width, height = PAD_LEFT + plot_w + PAD_RIGHT, PAD_TOP + HEIGHT + PAD_BOTTOM
    bottom = PAD_TOP + HEIGHT
    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">']
    for i in range(TICKS + 1):  # grid lines and both axes' labels
        y = bottom - HEIGHT * i / TICKS
        out.append(f'<line class="grid" x1="{PAD_LEFT}" x2="{PAD_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="axis ms" x="{PAD_LEFT - 6}" y="{y:.1f}" text-anchor="end">'
                   f"{_ms(max_ms * i / TICKS)}</text>")
        out.append(f'<text class="axis usd" x="{PAD_LEFT + plot_w + 6}" y="{y:.1f}">'
                   f"${max_usd * i / TICKS:.2f}</text>")
    dots = []
    for n, bar in enumerate(bars):
        x = PAD_LEFT + GAP + n * (BAR_W + GAP)
        h = HEIGHT * bar.merge_ms / max_ms
        cy = bottom - HEIGHT * float(bar.llm_usd) / max_usd
        tip = bar.title or bar.label
        tip = f"{tip}: merging {bar.merge_ms} ms, LLM ${float(bar.llm_usd):.4f}"
        out.append(f'<a href="{escape(bar.href)}"><title>{escape(tip)}</title>'
                   f'<rect class="bar" x="{x}" y="{bottom - h:.1f}" width="{BAR_W}" height="{max(h, 0.5):.1f}"/>'
                   f'<text class="label" x="{x + BAR_W / 2:.1f}" y="{bottom + 14}" text-anchor="middle">'
                   f"{escape(bar.label)}</text></a>")
        dots.append((x + BAR_W / 2, cy))
    if len(dots) > 1:
        out.append('<polyline class="cost" points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in dots) + '"/>')
    out.extend(f'<circle class="cost" cx="{x:.1f}" cy="{y:.1f}" r="3"/>' for x, y in dots)
    out.append(f'<text class="legend" x="{PAD_LEFT}" y="{height - 4}"><tspan class="ms">■ merge time</tspan>'
               f'<tspan class="usd" dx="12">● LLM cost</tspan></text>')
    out.append("</svg>")
    return "".join(out)
