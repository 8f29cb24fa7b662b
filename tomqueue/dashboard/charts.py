"""Charts: the geometry of the overview's bar charts, drawn as SVG by the templates.

Server-rendered on purpose: no JavaScript charting library to ship, pin or load, and the
page reads the same with scripts off. Pure and unit-tested: ``bar_chart`` turns counts
per time bucket into bars, axis ticks and labels in the SVG's own coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

WIDTH = 720  # the SVG's viewBox; it scales to the page's width
HEIGHT = 180
LEFT = 44  # room for the count ticks
BOTTOM = 22  # room for the time labels
TOP = 8


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    y: float
    height: float
    title: str  # the tooltip: the bucket's time and count


@dataclass(frozen=True)
class Tick:
    position: float  # y for a count tick, x for a time label
    label: str


@dataclass(frozen=True)
class BarChart:
    bars: tuple[Bar, ...]
    count_ticks: tuple[Tick, ...]
    time_labels: tuple[Tick, ...]
    total: int
    peak: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    plot_bottom: int = HEIGHT - BOTTOM


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value`` (>= 1)."""
    if value <= 1:
        return 1
    power: int = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def bar_chart(
    points: Sequence[tuple[datetime, int]], bucket: timedelta, labels: int = 6
) -> BarChart:
    """Bars for counts per bucket (oldest first), scaled to the tallest, with three count
    ticks and about ``labels`` time labels (HH:MM, UTC) along the bottom."""
    plot_width = WIDTH - LEFT
    plot_height = HEIGHT - BOTTOM - TOP
    peak = max((count for _, count in points), default=0)
    top = nice_ceiling(peak)
    slot = plot_width / max(len(points), 1)
    gap = min(2.0, slot * 0.2)
    bars = []
    for index, (moment, count) in enumerate(points):
        height = plot_height * count / top
        bars.append(
            Bar(
                x=round(LEFT + index * slot + gap / 2, 2),
                width=round(max(slot - gap, 0.5), 2),
                y=round(TOP + plot_height - height, 2),
                height=round(height, 2),
                title=f"{moment:%H:%M} UTC, {_span(bucket)}: {count}",
            )
        )
    ticks = tuple(
        Tick(round(TOP + plot_height * (1 - share), 2), str(round(top * share)))
        for share in (0.0, 0.5, 1.0)
        if share == 0.0 or top * share == int(top * share)
    )
    every = max(1, math.ceil(len(points) / labels))
    time_labels = tuple(
        Tick(round(LEFT + index * slot + slot / 2, 2), f"{moment:%H:%M}")
        for index, (moment, _) in enumerate(points)
        if index % every == 0
    )
    total = sum(count for _, count in points)
    return BarChart(tuple(bars), ticks, time_labels, total, peak)


def _span(bucket: timedelta) -> str:
    minutes = int(bucket.total_seconds() // 60)
    return f"{minutes} min" if minutes else f"{int(bucket.total_seconds())} s"
