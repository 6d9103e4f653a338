"""Stacked bar charts laid out on the server and drawn as inline SVG by the template: the admin has
no JavaScript charting library, and a picture that needs none also prints and screenshots as is."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

# The drawing's units are about the screen's pixels at the width the dashboard gives each chart, so
# that its 11-unit labels read as 11-pixel text; a narrower chart gets a narrower drawing.
WIDTH = 640
HEIGHT = 250
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 22, 48
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
BAR_SHARE = 0.72
# More labels than this under the bars would overlap; totals above the bars likewise.
MAX_AXIS_LABELS = 8
MAX_TOTALS_SHOWN = 12


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    color: str


@dataclass
class Bucket:
    label: str
    counts: dict

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class Segment:
    y: float
    height: float
    color: str
    tooltip: str


@dataclass
class Bar:
    x: float
    width: float
    centre: float
    top: float
    total: int
    segments: list[Segment]


@dataclass
class Tick:
    y: float
    label: str


@dataclass
class AxisLabel:
    x: float
    label: str


@dataclass
class LegendEntry:
    label: str
    color: str
    total: int


@dataclass
class BarChart:
    title: str
    unit: str
    axis: str
    series: tuple[Series, ...]
    buckets: list[Bucket]
    width: int = WIDTH

    height = HEIGHT
    left = LEFT
    top = TOP
    plot_height = PLOT_HEIGHT
    plot_bottom = TOP + PLOT_HEIGHT
    tick_label_x = LEFT - 6
    axis_label_y = TOP + PLOT_HEIGHT + 16
    x_title_y = HEIGHT - 8
    y_title_x = 14
    y_title_y = TOP + PLOT_HEIGHT / 2

    @property
    def plot_width(self) -> int:
        return self.width - LEFT - RIGHT

    @property
    def plot_right(self) -> int:
        return self.width - RIGHT

    @cached_property
    def total(self) -> int:
        return sum(bucket.total for bucket in self.buckets)

    @cached_property
    def scale_max(self) -> int:
        return self.tick_step * max(1, math.ceil(max((b.total for b in self.buckets), default=0) / self.tick_step))

    @cached_property
    def tick_step(self) -> int:
        """A round step (1, 2, 5, 10, 20, 50…) giving about four gridlines above zero."""
        highest = max((bucket.total for bucket in self.buckets), default=0)
        raw = max(1.0, highest / 4)
        magnitude = 10 ** math.floor(math.log10(raw))
        return int(next(step * magnitude for step in (1, 2, 5, 10) if step * magnitude >= raw))

    @cached_property
    def ticks(self) -> list[Tick]:
        return [Tick(self._y(value), f"{value:,}") for value in range(0, self.scale_max + 1, self.tick_step)]

    @cached_property
    def bars(self) -> list[Bar]:
        slot = self.plot_width / max(1, len(self.buckets))
        width = slot * BAR_SHARE
        bars = []
        for index, bucket in enumerate(self.buckets):
            x = LEFT + index * slot + (slot - width) / 2
            base = self.plot_bottom
            segments = []
            for series in self.series:
                count = bucket.counts.get(series.key, 0)
                if not count:
                    continue
                height = count / self.scale_max * PLOT_HEIGHT
                base -= height
                segments.append(Segment(base, height, series.color, f"{bucket.label}: {count:,} {series.label}"))
            bars.append(Bar(x, width, x + width / 2, base, bucket.total, segments))
        return bars

    @cached_property
    def axis_labels(self) -> list[AxisLabel]:
        every = math.ceil(len(self.buckets) / MAX_AXIS_LABELS)
        return [
            AxisLabel(bar.centre, bucket.label)
            for index, (bar, bucket) in enumerate(zip(self.bars, self.buckets, strict=True))
            if index % every == 0
        ]

    @property
    def show_totals(self) -> bool:
        return len(self.buckets) <= MAX_TOTALS_SHOWN

    @cached_property
    def legend(self) -> list[LegendEntry]:
        return [
            LegendEntry(series.label, series.color, sum(b.counts.get(series.key, 0) for b in self.buckets))
            for series in self.series
        ]

    @property
    def description(self) -> str:
        """What a screen reader says for the picture."""
        parts = ", ".join(f"{entry.total:,} {entry.label}" for entry in self.legend)
        return f"{self.title}: {self.total:,} {self.unit} ({parts})"

    def _y(self, value: int) -> float:
        return self.plot_bottom - value / self.scale_max * PLOT_HEIGHT
