"""Small charts as inline SVG, drawn on the server: no JavaScript library, no CDN, and the
page shows the same picture with or without scripts. Every chart is an ``img`` for assistive
technology with a sentence that says what it shows (its ``aria-label`` and ``<title>``), and
marks differ by shape as well as colour.

All text placed in the SVG goes through ``escape``: task names and statuses are data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.html import escape

from dashboard.templatetags.dashboard import human_seconds

WIDTH, HEIGHT = 480, 140
LEFT, BOTTOM, TOP, RIGHT = 44, 18, 8, 8


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    seconds: float
    failed: bool


def _frame(label: str, body: list[str], top_label: str, start: datetime, end: datetime) -> str:
    plot_h = HEIGHT - BOTTOM - TOP
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH}" y2="{TOP + plot_h}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{escape(top_label)}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">0</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 4}">{start:%H:%M}</text>',
        f'<text x="{WIDTH}" y="{HEIGHT - 4}" text-anchor="end">{end:%H:%M} UTC</text>',
        *body, "</svg>",
    ]
    return "".join(parts)


def per_minute(counts: Sequence[int], end: datetime, what: str) -> str:
    """Bars, one per minute, the last one ending at ``end``."""
    start = end - timedelta(minutes=len(counts))
    top = max(counts, default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - BOTTOM - TOP
    step = plot_w / max(1, len(counts))
    bars = []
    for i, n in enumerate(counts):
        if n:
            h = plot_h * n / top
            bars.append(f'<rect class="bar" x="{LEFT + i * step:.1f}" y="{TOP + plot_h - h:.1f}" '
                        f'width="{max(1.0, step - 1):.1f}" height="{h:.1f}"><title>{n} at '
                        f'{start + timedelta(minutes=i):%H:%M}</title></rect>')
    total = sum(counts)
    label = (f"{what} per minute over the last {len(counts)} minutes: {total} in all, "
             f"at most {max(counts, default=0)} in one minute")
    return _frame(label, bars, str(top), start, end)


def durations(points: Sequence[Point], start: datetime, end: datetime) -> str:
    """One mark per run that finished between ``start`` and ``end``, at its finish time and
    duration: a circle when it succeeded, a cross when it failed."""
    top = max((p.seconds for p in points), default=0.0) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - BOTTOM - TOP
    span = (end - start).total_seconds() or 1.0
    marks = []
    for p in points:
        x = LEFT + plot_w * min(1.0, max(0.0, (p.at - start).total_seconds() / span))
        y = TOP + plot_h - plot_h * p.seconds / top
        tip = f"<title>{human_seconds(p.seconds)}, {'failed' if p.failed else 'succeeded'}</title>"
        if p.failed:
            marks.append(f'<path class="mark failed" d="M{x - 3:.1f} {y - 3:.1f}l6 6m0 -6l-6 6">'
                         f"{tip}</path>")
        else:
            marks.append(f'<circle class="mark ok" cx="{x:.1f}" cy="{y:.1f}" r="2.5">'
                         f"{tip}</circle>")
    failed = sum(p.failed for p in points)
    label = (f"Durations of the {len(points)} runs that finished in the last hour "
             f"({failed} did not succeed), longest {human_seconds(top) if points else '–'}")
    return _frame(label, marks, human_seconds(top) if points else "–", start, end)
