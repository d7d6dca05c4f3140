"""Entries per hour as bars for a server-rendered SVG (no JavaScript, nothing from a CDN).

`hourly_chart` turns 24 (residents, visitors) pairs into rectangles and axis labels in
the SVG's own coordinates; `templates/_chart.html` draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 12, 24  # room for the axis labels


@dataclass(frozen=True)
class Bar:
    hour: int
    x: float
    width: float
    resident_y: float
    resident_h: float
    visitor_y: float
    visitor_h: float
    residents: int
    visitors: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[tuple[float, int]]  # (y, value) of the horizontal grid lines
    base: float  # y of the zero line
    left: int
    right: float


def nice_top(peak: int) -> int:
    """A round maximum for the y axis at or above the peak: 1, 2, 5, 10, 20, 50 ..."""
    top = 1
    while top < peak:
        top = next(t for t in _steps(top) if t > top)
    return top


def _steps(start: int) -> list[int]:
    magnitude = 1
    while magnitude * 10 <= start:
        magnitude *= 10
    return [magnitude * 2, magnitude * 5, magnitude * 10]


def hourly_chart(hourly: list[tuple[int, int]]) -> Chart:
    peak = max((r + v for r, v in hourly), default=0)
    top = nice_top(max(peak, 1))
    plot_h = HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    slot = (WIDTH - LEFT - RIGHT) / 24
    bars = []
    for hour, (residents, visitors) in enumerate(hourly):
        rh = plot_h * residents / top
        vh = plot_h * visitors / top
        x = LEFT + hour * slot + slot * 0.15
        bars.append(
            Bar(
                hour,
                round(x, 1),
                round(slot * 0.7, 1),
                round(base - rh, 1),
                round(rh, 1),
                round(base - rh - vh, 1),
                round(vh, 1),
                residents,
                visitors,
            )
        )
    ticks = [(round(base - plot_h * k / 4, 1), top * k // 4) for k in range(5) if top * k % 4 == 0]
    return Chart(WIDTH, HEIGHT, bars, ticks, base, LEFT, WIDTH - RIGHT)
