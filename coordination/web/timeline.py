"""A ticket's timeline (a Gantt chart) drawn as SVG on the server, like the DAG and the charts.

One lane per task that has run, in the order they started: the merge that brought its inputs together
(a join's convergence merge), its run, and the merge that landed it on the ticket branch. Bars are links
with a tooltip; a run or merge still going ends at "now" (the page redraws it as events arrive).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from coordination.web import formats

LABEL_W = 140
PLOT_W = 760
LANE_H = 16
BAR_H = 10
MERGE_H = 6
AXIS_H = 22
PAD = 8
KEY_CHARS = 18
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)
MAX_TICKS = 8


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime | None  # None: still going
    status: str
    href: str
    what: str  # "run" | "merge in" | "landing": the tooltip says which


@dataclass
class Lane:
    key: str
    title: str
    href: str
    spans: list[Span] = field(default_factory=list)

    @property
    def start(self) -> datetime:
        return min(s.start for s in self.spans)


def render(lanes: list[Lane], now: datetime) -> str:
    """The ``<svg>``, or "" when nothing has run yet."""
    lanes = sorted((lane for lane in lanes if lane.spans), key=lambda lane: (lane.start, lane.key))
    if not lanes:
        return ""
    t0 = min(lane.start for lane in lanes)
    t1 = max(max(s.end or now for s in lane.spans) for lane in lanes)
    total = max((t1 - t0).total_seconds(), 1.0)
    step = next((s for s in STEPS if total / s <= MAX_TICKS), STEPS[-1])
    total = step * -(-total // step)  # whole ticks: the last one closes the axis
    scale = PLOT_W / total
    width = LABEL_W + PLOT_W + 2 * PAD
    height = AXIS_H + len(lanes) * LANE_H + PAD

    def x(moment: datetime) -> float:
        return LABEL_W + PAD + (moment - t0).total_seconds() * scale

    out = [f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="timeline of {formats.plural(len(lanes), "task")}'
           f' from {formats.stamp(t0)}">']
    for i in range(int(total // step) + 1):
        tx = LABEL_W + PAD + i * step * scale
        out.append(f'<line class="grid" x1="{tx:.1f}" x2="{tx:.1f}" y1="{AXIS_H - 4}" y2="{height - PAD}"/>'
                   f'<text class="axis" x="{tx:.1f}" y="{AXIS_H - 9}" text-anchor="middle">'
                   f"{'+' + formats.duration(i * step) if i else formats.stamp(t0)[11:]}</text>")
    for row, lane in enumerate(lanes):
        top = AXIS_H + row * LANE_H
        key = lane.key if len(lane.key) <= KEY_CHARS else lane.key[: KEY_CHARS - 1] + "…"
        out.append(f'<a href="{escape(lane.href)}"><title>{escape(lane.key)}: {escape(lane.title)}</title>'
                   f'<text class="label" x="{LABEL_W}" y="{top + LANE_H / 2:.1f}" text-anchor="end">'
                   f"{escape(key)}</text></a>")
        for span in lane.spans:
            out.append(_bar(span, x(span.start), x(span.end or now), top, f"{lane.key}: {span.what} at +"
                            f"{formats.duration((span.start - t0).total_seconds())}", now))
    if any(s.end is None for lane in lanes for s in lane.spans):
        nx = x(now)
        out.append(f'<line class="now" x1="{nx:.1f}" x2="{nx:.1f}" y1="{AXIS_H - 4}" y2="{height - PAD}"/>')
    out.append("</svg>")
    return "".join(out)


def _bar(span: Span, left: float, right: float, top: int, what: str, now: datetime) -> str:
    """A span's bar; its tooltip says what and when (from the axis' start: one date per chart is enough)."""
    merge = span.what != "run"
    h = MERGE_H if merge else BAR_H
    y = top + (LANE_H - h) / 2
    took = formats.duration(((span.end or now) - span.start).total_seconds()) + ("" if span.end else " so far")
    tip = f"{what}, {took} ({span.status.replace('_', ' ')})"
    kind = "merge" if merge else "run"
    return (f'<a href="{escape(span.href)}"><title>{escape(tip)}</title>'
            f'<rect class="{kind} st-{span.status}{"" if span.end else " going"}" x="{left:.1f}" y="{y:.1f}" '
            f'width="{max(right - left, 1.5):.1f}" height="{h}" rx="2"/></a>')
