"""Draws a ChartSpec with matplotlib's object API once, then writes it as PNG (chat, email) or SVG (web)."""

from __future__ import annotations

import io
import math
import struct
import threading
import zlib
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import matplotlib
import matplotlib.dates as mdates
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.ticker import FixedLocator, Formatter, FuncFormatter, MaxNLocator
from matplotlib.transforms import Bbox, blended_transform_factory
from matplotlib.typing import RcKeyType

from reports.charts import theme
from reports.charts.anomaly_labels import OddPoint, mark_anomalies
from reports.charts.formatting import (
    DateGranularity,
    format_axis_value,
    format_change,
    format_date_label,
    format_datetime_stamp,
    format_points,
    format_score_change,
    format_value,
    points_moved,
    score_moved,
)
from reports.charts.spec import Annotation, ChartSpec, KpiTile
from reports.charts.target_clearance import BarValue, keep_clear

# svg.fonttype is only readable from the global rcParams; the lock keeps two SVG renders from
# restoring each other's settings. PNG renders never touch rcParams, so they do not wait.
_SVG_RC_LOCK = threading.Lock()
_SVG_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "switchboard",
    "svg.image_inline": True,
}

# Level 1 without row filters: most of a chart is flat background, which deflate squeezes anyway,
# and it encodes about four times faster than Pillow's default adaptive filtering.
_PNG_COMPRESSION_LEVEL = 1
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_MAX_LABEL_CHARS = 22
#: A bar's label under the axis: "London Marylebone" whole (labels turn when they crowd the axis).
_BAR_LABEL_CHARS = 19
_MAX_HEATMAP_ANNOTATED_CELLS = 240
_BAR_VALUE_LABEL_LIMIT = 12
# Average glyph advance of DejaVu Sans relative to the font size; used to size margins without
# asking the renderer to measure text, which is what makes automatic layout slow.
_GLYPH_WIDTH_EM = 0.62
_NICE_DURATION_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)

# Words for a gap, so no reader takes an empty tile, a missing bar or a bare axis for a zero.
NO_DATA = "No data"
NO_DATA_IN_PERIOD = "No data for this period"
NO_DATA_MARK = "no data"
_ANOMALY_LABEL_CHARS = 40


def render_png(spec: ChartSpec) -> bytes:
    """The chart as PNG, 1200 x 675 px, for Slack, Telegram and email."""
    figure = draw_chart(spec)
    raw = io.BytesIO()
    figure.savefig(raw, format="rgba")
    width, height = figure.canvas.get_width_height(physical=True)
    pixels = np.frombuffer(raw.getbuffer(), dtype=np.uint8).reshape(height, width, 4)
    return _encode_png(
        pixels, text={"Title": spec.title, "Description": spec.summary or "", "Software": "Switchboard"}
    )


def render_svg(spec: ChartSpec) -> str:
    """The same chart as SVG with real <text>, so titles and stamps stay searchable and selectable."""
    figure = draw_chart(spec)
    buffer = io.StringIO()
    metadata = {
        "Title": spec.title,
        "Description": spec.summary or "",
        "Date": None,
        "Creator": "Switchboard",
    }
    with _SVG_RC_LOCK, matplotlib.rc_context(_SVG_RC):
        figure.savefig(buffer, format="svg", metadata=metadata)
    return buffer.getvalue()


def draw_chart(spec: ChartSpec) -> Figure:
    """The one drawing routine both formats share, so a bot image and a dashboard chart cannot drift."""
    figure = Figure(figsize=theme.FIGURE_INCHES, dpi=theme.PNG_DPI, facecolor=theme.BACKGROUND)
    _draw_header(figure, spec)
    _draw_footer(figure, spec)
    _KIND_PAINTERS[spec.kind](figure, spec)
    return figure


# --- frame -------------------------------------------------------------------------------------


def _draw_header(figure: Figure, spec: ChartSpec) -> None:
    figure.text(
        theme.TEXT_LEFT,
        theme.TITLE_Y,
        _shorten(spec.title, 62),
        fontsize=theme.TITLE_PT,
        fontweight="bold",
        color=theme.TEXT_COLOUR,
        va="top",
    )
    period = spec.period_label if not spec.subtitle else f"{spec.period_label} · {spec.subtitle}"
    figure.text(
        theme.TEXT_LEFT,
        theme.PERIOD_Y,
        _shorten(period, 90),
        fontsize=theme.PERIOD_PT,
        color=theme.MUTED_TEXT_COLOUR,
        va="top",
    )


def _draw_footer(figure: Figure, spec: ChartSpec) -> None:
    stamp = format_datetime_stamp(spec.data_as_of, timezone=spec.timezone, locale=spec.locale)
    for x, text, align, weight in (
        (theme.TEXT_LEFT, f"Data as of {stamp}", "left", "normal"),
        (1 - theme.TEXT_LEFT, theme.BRAND_STAMP, "right", "bold"),
    ):
        figure.text(
            x,
            theme.FOOTER_Y,
            text,
            ha=align,
            va="bottom",
            fontsize=theme.FOOTER_PT,
            fontweight=weight,
            color=theme.MUTED_TEXT_COLOUR,
        )


def _value_axes(figure: Figure, spec: ChartSpec, ticks: Sequence[float], *, bottom: float) -> Axes:
    """Axes whose left margin fits the widest y tick label, and a legend row when there are many series."""
    widest = max((len(_axis_text(spec, t)) for t in ticks), default=4)
    label_width = widest * theme.TICK_PT * _GLYPH_WIDTH_EM / 72 / theme.FIGURE_INCHES[0]
    left = max(theme.MARGIN_LEFT, theme.TEXT_LEFT + label_width + 0.02)
    top = _plot_top(spec)
    ax = figure.add_axes((left, bottom, theme.MARGIN_RIGHT - left, top - bottom))
    theme.style_value_axes(ax)
    ax.set_ylim(ticks[0], ticks[-1])
    ax.yaxis.set_major_locator(FixedLocator(list(ticks)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: _axis_text(spec, value)))
    return ax


def _legend_rows(spec: ChartSpec) -> list[int]:
    """How many legend entries fit on each row, estimated from name lengths."""
    em = theme.LEGEND_PT / 72
    available = theme.FIGURE_INCHES[0] * (1 - 2 * theme.TEXT_LEFT)
    rows: list[int] = [0]
    used = 0.0
    for label in _legend_labels(spec):
        entry = (3.2 + len(label) * _GLYPH_WIDTH_EM) * em
        if rows[-1] and used + entry > available:
            rows.append(0)
            used = 0.0
        rows[-1] += 1
        used += entry
    return rows


def _legend_labels(spec: ChartSpec) -> list[str]:
    names = _shorten_apart([s.name for s in spec.series], _MAX_LABEL_CHARS)
    # A series with nothing to draw would otherwise sit in the legend as if its line were hidden at zero.
    return [
        name if _present(s.values) else f"{name} ({NO_DATA_MARK})"
        for name, s in zip(names, spec.series, strict=True)
    ]


def _plot_top(spec: ChartSpec) -> float:
    if len(spec.series) < 2 or spec.kind in ("table", "funnel", "kpi_tile"):
        return theme.PLOT_TOP
    return theme.PLOT_TOP_WITH_LEGEND_ROW - theme.LEGEND_ROW_HEIGHT * (len(_legend_rows(spec)) - 1)


def _add_legend(figure: Figure, spec: ChartSpec, handles: Sequence[Artist]) -> None:
    if len(spec.series) < 2:
        return  # one series is named by the title; a lone legend entry is noise
    columns = max(_legend_rows(spec))
    # An explicit place avoids matplotlib's "best" search, which tests every data point.
    figure.legend(
        handles=list(handles),
        labels=_legend_labels(spec),
        loc="upper left",
        bbox_to_anchor=(theme.TEXT_LEFT - 0.008, theme.PERIOD_Y - 0.05),
        ncols=columns,
        frameon=False,
        fontsize=theme.LEGEND_PT,
        handlelength=1.4,
        handletextpad=0.5,
        columnspacing=1.4,
        borderaxespad=0.0,
        borderpad=0.0,
        labelcolor=theme.TEXT_COLOUR,
    )


# --- value scales ------------------------------------------------------------------------------


def _bar_text(spec: ChartSpec, value: float) -> str:
    """A bar's own value: as the table beside it writes it ("US$0.18", "€754.45") below a thousand, where a
    tick's short form ("0.17", "€754.4") would disagree with it; short above ("€12.3K")."""
    if spec.unit in ("currency", "number") and abs(value) < 1000:
        exact = float(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
        return format_value(exact, spec.unit, locale=spec.locale, currency=spec.currency)
    return _axis_text(spec, value)


def _axis_text(spec: ChartSpec, value: float) -> str:
    return format_axis_value(float(value), spec.unit, locale=spec.locale, currency=spec.currency)


def _value_ticks(
    spec: ChartSpec, values: Sequence[float], *, include_zero: bool, headroom: float = 0.0
) -> list[float]:
    """Round tick values whose first and last ticks frame the data, so the top gridline closes the plot.

    headroom (a share of the range) keeps labels printed above the tallest bar inside the plot.
    """
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if include_zero or (low >= 0 and low <= 0.35 * high):
        low, high = min(low, 0.0), max(high, 0.0)
    high += (high - low) * headroom
    if high == low:
        high, low = high + max(abs(high) * 0.1, 1.0), low - (max(abs(low) * 0.1, 1.0) if low else 0.0)
    if spec.unit == "duration":
        step = next((s for s in _NICE_DURATION_STEPS if (high - low) / s <= 5), _NICE_DURATION_STEPS[-1])
        first, last = math.floor(low / step), math.ceil(high / step)
        return [float(i * step) for i in range(first, last + 1)]
    locator = MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10], integer=spec.unit == "count")
    candidates = [round(float(t), 10) for t in locator.tick_values(low, high)]
    start = max((t for t in candidates if t <= low), default=candidates[0])
    end = min((t for t in candidates if t >= high), default=candidates[-1])
    if spec.unit == "percent" and values and max(values) <= 1.0 and end > 1.0 and 1.0 in candidates:
        end = 1.0  # a rate's axis ends at 100%, not at 125% for its labels' sake: they sit just above it
    return [t for t in candidates if start <= t <= end]


def _series_arrays(spec: ChartSpec) -> list[np.ndarray]:
    return [np.array([np.nan if v is None else v for v in s.values], dtype=float) for s in spec.series]


def _present(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None]


# --- time series -------------------------------------------------------------------------------


class _LocaleDateFormatter(Formatter):
    """Concise date ticks in the reader's language: the year or day appears only where it changes."""

    def __init__(self, locale: str, *, every_point_days: float | None = None) -> None:
        self._locale = locale
        #: Ticks on the points themselves (weeks): each names its point's day, however far apart they are.
        self._every_point_days = every_point_days

    def __call__(self, x: float, pos: int | None = None) -> str:
        return format_date_label(_axis_days_to_datetime(x), locale=self._locale)

    def format_ticks(self, values: list[float]) -> list[str]:
        moments = [_axis_days_to_datetime(v) for v in values]
        spacing = (values[1] - values[0]) if len(values) > 1 else 1.0
        if self._every_point_days is not None:
            spacing = self._every_point_days
        labels: list[str] = []
        for i, moment in enumerate(moments):
            previous = moments[i - 1] if i else None
            labels.append(
                format_date_label(
                    moment, locale=self._locale, granularity=_tick_granularity(spacing, moment, previous)
                )
            )
        return labels


def _tick_granularity(spacing_days: float, moment: datetime, previous: datetime | None) -> DateGranularity:
    if spacing_days >= 360:
        return "year"
    if spacing_days >= 28:
        return "month_year" if previous is None or previous.year != moment.year else "month"
    if spacing_days >= 1:
        return "day"
    return "day" if previous is None or previous.date() != moment.date() else "hour"


def _date_positions(spec: ChartSpec) -> np.ndarray:
    zone = ZoneInfo(spec.timezone)
    # Aware datetimes are shown on the reader's clock; bare dates are calendar days and stay as they are.
    local: list[date | datetime] = [
        x.astimezone(zone).replace(tzinfo=None) if isinstance(x, datetime) and x.tzinfo else x
        for x in spec.x_dates
    ]
    return np.asarray(mdates.date2num(local), dtype=float)  # type: ignore[no-untyped-call]


def _axis_days_to_datetime(days: float) -> datetime:
    moment: datetime = mdates.num2date(days)  # type: ignore[no-untyped-call]  # matplotlib.dates is unannotated
    return moment.replace(tzinfo=None)


def _time_axes(
    figure: Figure, spec: ChartSpec, stacked_totals: Sequence[float] | None
) -> tuple[Axes, np.ndarray]:
    values = (
        list(stacked_totals)
        if stacked_totals is not None
        else [v for s in spec.series for v in _present(s.values)]
    )
    has_data = bool(values)
    values += [a.value for a in spec.annotations if a.kind == "target" and a.value is not None]
    ticks = _value_ticks(spec, values, include_zero=stacked_totals is not None)
    ax = _value_axes(figure, spec, ticks, bottom=theme.PLOT_BOTTOM)
    x = _date_positions(spec)
    weeks = _week_ticks(x)
    pad = max((x[-1] - x[0]) * 0.01, 0.5 if len(x) == 1 else 0.0)
    if weeks is not None:  # the first and last labels sit on the end points: room for half a label each
        pad = max(3.5, (x[-1] - x[0]) * 0.03)
    ax.set_xlim(x[0] - pad, x[-1] + pad)
    if weeks is not None:
        ax.xaxis.set_major_locator(FixedLocator(weeks))
        ax.xaxis.set_major_formatter(_LocaleDateFormatter(spec.locale, every_point_days=7.0))
    else:
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=7))  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(_LocaleDateFormatter(spec.locale))
    if not has_data:
        _say_no_data(ax)
    return ax, x


def _week_ticks(x: np.ndarray, most: int = 7) -> list[float] | None:
    """Weekly points get their ticks on the points themselves (every k-th week), so each label names the
    week a point stands for; a calendar locator would put them on other weekdays, between the points."""
    if len(x) < 2 or not np.allclose(np.diff(x), 7.0):
        return None
    step = -(-len(x) // most)
    return [float(v) for v in x[::step]]


def _say_no_data(ax: Axes) -> None:
    """An empty plot says so in words; a bare value axis invites reading its bottom tick as the value."""
    ax.tick_params(axis="y", labelleft=False)
    ax.grid(False)
    ax.text(
        0.5,
        0.5,
        NO_DATA_IN_PERIOD,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=theme.TITLE_PT,
        color=theme.MUTED_TEXT_COLOUR,
    )


def _mark_lone_points(ax: Axes, x: np.ndarray, y: np.ndarray, colour: str) -> None:
    """A value with gaps on both sides has no segment to draw, so it gets a dot or it would vanish."""
    known = ~np.isnan(y)
    before = np.concatenate(([False], known[:-1]))
    after = np.concatenate((known[1:], [False]))
    lone = known & ~before & ~after
    if lone.any():
        # Unclipped, so a dot on the lowest or highest tick shows whole rather than halved.
        ax.plot(x[lone], y[lone], linestyle="none", marker="o", markersize=4.5, color=colour, clip_on=False)


def _paint_line(figure: Figure, spec: ChartSpec) -> None:
    ax, x = _time_axes(figure, spec, stacked_totals=None)
    arrays = _series_arrays(spec)
    handles = [
        ax.plot(x, y, color=theme.series_colour(i), linewidth=theme.LINE_WIDTH, solid_capstyle="round")[0]
        for i, y in enumerate(arrays)
    ]
    every_point = len(x) == 1 or (len(spec.series) == 1 and len(x) <= 31)
    for i, (line, y) in enumerate(zip(handles, arrays, strict=True)):
        if every_point:
            line.set_marker("o")
            line.set_markersize(4 if len(x) > 1 else 8)
            line.set_color(theme.series_colour(i))
        else:
            _mark_lone_points(ax, x, y, theme.series_colour(i))
    _add_legend(figure, spec, handles)
    _draw_annotations(ax, spec, x)


def _paint_area(figure: Figure, spec: ChartSpec) -> None:
    arrays = _series_arrays(spec)
    if len(arrays) == 1:
        ax, x = _time_axes(figure, spec, stacked_totals=None)
        ax.fill_between(x, arrays[0], color=theme.series_colour(0), alpha=0.18, linewidth=0)
        ax.plot(x, arrays[0], color=theme.series_colour(0), linewidth=theme.LINE_WIDTH)
        _mark_lone_points(ax, x, arrays[0], theme.series_colour(0))
    else:
        # Several areas are stacked: overlapping translucent areas cannot be read at thumbnail size.
        # Where a part is missing the top of the stack is unknown, so the stack breaks there rather
        # than sinking that part to zero; a series with no data at all is named so in the legend.
        complete = _complete_stack_columns(spec)
        layers = [np.where(complete, np.nan_to_num(a), np.nan) for a in arrays]
        totals = [float(t) for t in np.sum(layers, axis=0)[complete]]
        ax, x = _time_axes(figure, spec, stacked_totals=totals)
        colours = [theme.series_colour(i) for i in range(len(layers))]
        areas = ax.stackplot(x, *layers, colors=colours, linewidth=0.6, edgecolor=theme.BACKGROUND)
        _add_legend(figure, spec, areas)
    _draw_annotations(ax, spec, x)


def _complete_stack_columns(spec: ChartSpec) -> np.ndarray:
    """Positions where every series that has data anywhere has a value, so the stack's top is known."""
    with_data = [a for a in _series_arrays(spec) if not np.isnan(a).all()]
    if not with_data:
        return np.zeros(len(spec.x_dates), dtype=bool)
    return np.asarray(~np.isnan(np.vstack(with_data)).any(axis=0))


# --- anomalies and targets ---------------------------------------------------------------------


def _draw_annotations(ax: Axes, spec: ChartSpec, x: np.ndarray) -> None:
    targets = [
        _draw_target(ax, spec, a.value, a.label)
        for a in spec.annotations
        if a.kind == "target" and a.value is not None
    ]
    found = [
        (annotation, height)
        for annotation in spec.annotations
        if annotation.kind == "anomaly" and annotation.x_index is not None
        for height in (_anomaly_height(spec, annotation.x_index, annotation.series_name),)
        if height is not None
    ]
    if not found:
        return
    found.sort(key=lambda item: _anomaly_rank(spec, *item))
    points = [
        OddPoint(float(x[a.x_index]), y, _shorten(a.label, _ANOMALY_LABEL_CHARS))
        for a, y in found
        if a.x_index is not None
    ]
    # Stacked areas fill the plot, so there are no points worth keeping clear of labels.
    stacked = spec.kind == "area" and len(spec.series) > 1
    plotted = [] if stacked else [np.column_stack([x, y]) for y in _series_arrays(spec)]
    data = np.vstack([np.zeros((0, 2)), *plotted])
    mark_anomalies(ax, points, targets=targets, data=data[~np.isnan(data).any(axis=1)])


def _anomaly_height(spec: ChartSpec, index: int, series_name: str | None) -> float | None:
    if spec.kind == "area" and len(spec.series) > 1:
        # On stacked areas the point that looks odd is the top of the stack, known only where it is drawn.
        if not _complete_stack_columns(spec)[index]:
            return None
        return sum(s.values[index] or 0.0 for s in spec.series)
    chosen = [s for s in spec.series if s.name == series_name] or list(spec.series)
    return next((s.values[index] for s in chosen if s.values[index] is not None), None)


def _anomaly_rank(spec: ChartSpec, annotation: Annotation, height: float) -> tuple[bool, float]:
    """Sort key, largest first: the stated deviation, else the distance from the series' median."""
    if annotation.deviation is not None:
        return False, -abs(annotation.deviation)
    chosen = [s for s in spec.series if s.name == annotation.series_name] or list(spec.series)
    values = [v for s in chosen for v in _present(s.values)]
    return True, -abs(height - float(np.median(values)))


def _draw_target(ax: Axes, spec: ChartSpec, value: float, label: str) -> Text:
    ax.axhline(value, color=theme.TARGET_COLOUR, linewidth=1.4, linestyle=(0, (5, 3)), zorder=4)
    text = label.strip() or f"Target {_axis_text(spec, value)}"
    if not text.lower().startswith("target"):
        text = f"Target {text}"
    return ax.text(
        0.995,
        value,
        text,
        transform=blended_transform_factory(ax.transAxes, ax.transData),
        ha="right",
        va="bottom",
        fontsize=theme.ANNOTATION_PT,
        color=theme.TARGET_COLOUR,
        bbox={
            "boxstyle": "square,pad=0.15",
            "facecolor": theme.BACKGROUND,
            "edgecolor": "none",
            "alpha": 0.85,
        },
        zorder=6,
    )


# --- categories --------------------------------------------------------------------------------


def _category_axes(figure: Figure, spec: ChartSpec, values: Sequence[float], *, labelled: bool) -> Axes:
    values = [*values, *(a.value for a in spec.annotations if a.kind == "target" and a.value is not None)]
    labels = _shorten_apart(spec.categories, _BAR_LABEL_CHARS)
    axis_inches = theme.FIGURE_INCHES[0] * (theme.MARGIN_RIGHT - theme.MARGIN_LEFT)
    needed = sum(len(label) + 2 for label in labels) * theme.TICK_PT * _GLYPH_WIDTH_EM / 72
    crowded = needed > axis_inches
    # Turned labels need room below the axis, more for a long one ("London Marylebone").
    longest = max((len(label) for label in labels), default=0)
    bottom = theme.PLOT_BOTTOM + ((0.12 + 0.012 * max(0, longest - 16)) if crowded else 0.0)
    ticks = _value_ticks(spec, values, include_zero=True, headroom=0.09 if labelled else 0.0)
    ax = _value_axes(figure, spec, ticks, bottom=bottom)
    ax.set_xticks(
        range(len(labels)),
        labels,
        rotation=30 if crowded else 0,
        ha="right" if crowded else "center",
        rotation_mode="anchor",
    )
    ax.set_xlim(-0.6, len(labels) - 0.4)
    return ax


def _paint_bar(figure: Figure, spec: ChartSpec) -> None:
    arrays = _series_arrays(spec)
    # Every bar carries its value while they are few: a small bar beside a tall one (message cost beside
    # revenue) still reads, though it hardly rises off the axis.
    labelled = len(spec.categories) * len(arrays) <= _BAR_VALUE_LABEL_LIMIT
    present = [v for s in spec.series for v in _present(s.values)]
    ax = _category_axes(figure, spec, present, labelled=labelled)
    if not present:
        _say_no_data(ax)
    slot = 0.8 / len(arrays)
    gap_rotation = _missing_bar_rotation(spec, slot * 0.92, alone=len(arrays) == 1) if present else None
    positions = np.arange(len(spec.categories), dtype=float)
    values: list[BarValue] = []
    for i, y in enumerate(arrays):
        offset = (i - (len(arrays) - 1) / 2) * slot
        # A missing bar is left out, not drawn at zero height, and says so where it would stand.
        known = ~np.isnan(y)
        bars = ax.bar(
            positions[known] + offset, y[known], width=slot * 0.92, color=theme.series_colour(i), zorder=3
        )
        if labelled:
            texts = ax.bar_label(
                bars,
                labels=[_bar_text(spec, float(v)) for v in y[known]],
                padding=3,
                fontsize=theme.ANNOTATION_PT,
                color=theme.TEXT_COLOUR,
            )
            values += [
                BarValue(text, float(v), theme.series_colour(i))
                for text, v in zip(texts, y[known], strict=True)
            ]
        if gap_rotation is not None:
            for position in positions[~known] + offset:
                _mark_missing_bar(ax, float(position), gap_rotation)
    _add_legend(figure, spec, [Patch(facecolor=theme.series_colour(i)) for i in range(len(arrays))])
    _draw_targets_clear_of(ax, spec, values)


def _missing_bar_rotation(spec: ChartSpec, bar_width: float, *, alone: bool) -> float | None:
    """The angle at which a "no data" mark fits a bar's place (0 across, 90 upright), None if neither fits.

    alone: the bar is the only one in its category, so the mark may use the category's whole width.
    """
    category_px = (
        theme.FIGURE_INCHES[0]
        * (theme.MARGIN_RIGHT - theme.MARGIN_LEFT)
        * theme.PNG_DPI
        / len(spec.categories)
    )
    em_px = theme.ANNOTATION_PT * theme.PNG_DPI / 72
    if alone and len(NO_DATA_MARK) * _GLYPH_WIDTH_EM * em_px <= 0.95 * category_px:
        return 0.0
    if 1.3 * em_px <= bar_width * category_px:
        return 90.0
    return None


def _mark_missing_bar(ax: Axes, position: float, rotation: float) -> None:
    ax.annotate(
        NO_DATA_MARK,
        xy=(position, 0.0),
        xytext=(0, 3),
        textcoords="offset points",
        ha="center",
        va="bottom",
        rotation=rotation,
        fontsize=theme.ANNOTATION_PT,
        color=theme.MUTED_TEXT_COLOUR,
        zorder=4,
    )


def _paint_stacked_bar(figure: Figure, spec: ChartSpec) -> None:
    arrays = _series_arrays(spec)
    known = ~np.isnan(np.vstack(arrays))
    some_known, all_known = known.any(axis=0), known.all(axis=0)
    totals = np.sum([np.nan_to_num(a) for a in arrays], axis=0)
    labelled = len(spec.categories) <= _BAR_VALUE_LABEL_LIMIT
    ax = _category_axes(figure, spec, [float(t) for t in totals[some_known]], labelled=labelled)
    if not some_known.any():
        _say_no_data(ax)
    positions = np.arange(len(spec.categories), dtype=float)
    bottom = np.zeros(len(positions))
    for i, y in enumerate(arrays):
        here = ~np.isnan(y)
        ax.bar(
            positions[here],
            y[here],
            bottom=bottom[here],
            width=0.62,
            color=theme.series_colour(i),
            zorder=3,
            edgecolor=theme.BACKGROUND,
            linewidth=0.6,
        )
        bottom = bottom + np.nan_to_num(y)
    gap_rotation = _missing_bar_rotation(spec, 0.62, alone=True) if some_known.any() else None
    values: list[BarValue] = []
    for position, total, some, every in zip(positions, totals, some_known, all_known, strict=True):
        if not some:
            if gap_rotation is not None:
                _mark_missing_bar(ax, float(position), gap_rotation)
        elif labelled:
            # Parts are never negative, so a stack with a part missing is at least what is drawn.
            text = _axis_text(spec, float(total))
            written = ax.annotate(
                text if every else f"≥ {text}",
                xy=(position, total),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=theme.ANNOTATION_PT,
                color=theme.TEXT_COLOUR,
            )
            # The top part's colour is what a total moved into the stack is written on.
            # A total moved into its stack sits in the top part that has height, in that part's colour.
            drawn = [i for i, y in enumerate(arrays) if np.nan_to_num(y[int(position)]) > 0]
            top_part = drawn[-1] if drawn else 0
            base = float(total) - float(np.nan_to_num(arrays[top_part][int(position)]))
            values.append(BarValue(written, float(total), theme.series_colour(top_part), base))
    _add_legend(figure, spec, [Patch(facecolor=theme.series_colour(i)) for i in range(len(arrays))])
    _draw_targets_clear_of(ax, spec, values)


def _draw_targets_clear_of(ax: Axes, spec: ChartSpec, values: Sequence[BarValue]) -> None:
    """Target lines on a bar chart, kept clear of the bars' values (target_clearance)."""
    levels = [a.value for a in spec.annotations if a.kind == "target" and a.value is not None]
    texts = [
        _draw_target(ax, spec, a.value, a.label)
        for a in spec.annotations
        if a.kind == "target" and a.value is not None
    ]
    keep_clear(ax, values, texts, levels)


def _paint_funnel(figure: Figure, spec: ChartSpec) -> None:
    steps = spec.series[0].values
    widest_label = max(len(_shorten(c, _MAX_LABEL_CHARS)) for c in spec.categories)
    left = (
        theme.TEXT_LEFT + widest_label * theme.TICK_PT * _GLYPH_WIDTH_EM / 72 / theme.FIGURE_INCHES[0] + 0.02
    )
    ax = figure.add_axes((left, theme.PLOT_BOTTOM, 0.66 - left, theme.PLOT_TOP - theme.PLOT_BOTTOM))
    theme.style_value_axes(ax, grid_axis="none")
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_xticks([])
    widest = max(_present(steps), default=0.0) or 1.0
    drawn = [(i, step) for i, step in enumerate(steps) if step is not None]
    ax.barh(
        [i for i, _ in drawn],
        [step for _, step in drawn],
        left=[(widest - step) / 2 for _, step in drawn],
        height=0.72,
        color=theme.series_colour(0),
    )
    positions = np.arange(len(steps))
    ax.set_xlim(0, widest)
    ax.set_ylim(len(steps) - 0.5, -0.5)  # first step on top
    ax.set_yticks(positions, [_shorten(c, _MAX_LABEL_CHARS) for c in spec.categories])
    text_at = blended_transform_factory(figure.transFigure, ax.transData)
    for i, step in enumerate(steps):
        previous = steps[i - 1] if i else None
        # A step without data has no bar and no conversion: neither it nor its neighbour is a zero.
        value = (
            NO_DATA_MARK
            if step is None
            else format_value(step, spec.unit, locale=spec.locale, currency=spec.currency)
        )
        note = (
            ""
            if step is None or previous is None
            else f"  ({_conversion(previous, step, spec.locale)} of previous)"
        )
        value_text = ax.text(
            0.68,
            i,
            value,
            transform=text_at,
            va="center",
            fontsize=theme.TICK_PT,
            fontweight="normal" if step is None else "bold",
            color=theme.MUTED_TEXT_COLOUR if step is None else theme.TEXT_COLOUR,
        )
        if note:
            # Anchored to the drawn value's right edge, so the gap is the same whatever its width.
            ax.annotate(
                note,
                xy=(1.0, 0.5),
                xycoords=value_text,
                xytext=(2, 0),
                textcoords="offset points",
                va="center",
                fontsize=theme.TICK_PT,
                color=theme.MUTED_TEXT_COLOUR,
            )
    first, last = steps[0], steps[-1]
    if first is not None and last is not None:
        figure.text(
            theme.TEXT_LEFT,
            theme.FOOTER_Y + 0.06,
            f"Overall conversion {_conversion(first, last, spec.locale)}",
            fontsize=theme.TICK_PT,
            color=theme.TEXT_COLOUR,
            va="bottom",
        )


def _conversion(before: float, after: float, locale: str) -> str:
    return format_value(after / before if before else None, "percent", locale=locale)


# --- tables, tiles and heatmaps ----------------------------------------------------------------


def _paint_table(figure: Figure, spec: ChartSpec) -> None:
    ax = figure.add_axes(
        (
            theme.TEXT_LEFT,
            theme.PLOT_BOTTOM - 0.03,
            1 - 2 * theme.TEXT_LEFT,
            theme.PLOT_TOP - theme.PLOT_BOTTOM + 0.05,
        )
    )
    ax.set_axis_off()
    row_inches = 0.29
    axes_inches = theme.FIGURE_INCHES[1] * ax.get_position().height
    fitting = int(axes_inches // row_inches) - 1
    shown = len(spec.categories) if len(spec.categories) <= fitting else fitting - 1
    names = _shorten_apart(spec.categories[:shown], 28)
    rows = [
        [
            names[r],
            *(
                format_value(s.values[r], s.unit or spec.unit, locale=spec.locale, currency=spec.currency)
                for s in spec.series
            ),
        ]
        for r in range(shown)
    ]
    if shown < len(spec.categories):
        rows.append([f"… {len(spec.categories) - shown} more rows", *("" for _ in spec.series)])
    header = ["", *_shorten_apart([s.name for s in spec.series], 18)]
    height = min(1.0, (len(rows) + 1) * row_inches / axes_inches)
    first_share = 0.34 if spec.series else 1.0
    widths = [first_share, *([(1 - first_share) / len(spec.series)] * len(spec.series))]
    table = ax.table(
        cellText=rows,
        colLabels=header,
        colWidths=widths,
        bbox=Bbox.from_bounds(0, 1 - height, 1, height),
        cellLoc="right",
        colLoc="right",
        edges="closed",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(theme.TICK_PT)
    for (row, column), cell in table.get_celld().items():
        cell.get_text().set_color(theme.TEXT_COLOUR)
        if column == 0:
            cell.get_text().set_horizontalalignment("left")
            cell.PAD = 0.02
        fill = (
            theme.TABLE_HEADER_FILL
            if row == 0
            else theme.TABLE_STRIPE_FILL
            if row % 2 == 0
            else theme.BACKGROUND
        )
        cell.set_facecolor(fill)
        cell.set_edgecolor(fill)
        if row == 0:
            cell.get_text().set_fontweight("bold")


def _paint_kpi_tile(figure: Figure, spec: ChartSpec) -> None:
    kpi = spec.kpi
    assert kpi is not None  # guaranteed by ChartSpec validation
    has_sparkline = bool(spec.series) and bool(_present(spec.series[0].values))
    value_y = 0.66 if has_sparkline else 0.56
    missing = kpi.value is None
    figure.text(
        theme.TEXT_LEFT,
        value_y,
        NO_DATA
        if missing
        else format_value(kpi.value, spec.unit, locale=spec.locale, currency=spec.currency),
        fontsize=theme.KPI_VALUE_PT,
        fontweight="bold",
        color=theme.MUTED_TEXT_COLOUR if missing else theme.TEXT_COLOUR,
        va="center",
    )
    text, colour = _kpi_change_line(spec, kpi)
    if text:
        figure.text(
            theme.TEXT_LEFT, value_y - 0.17, text, fontsize=theme.KPI_CHANGE_PT, color=colour, va="center"
        )
    if has_sparkline:
        ax = figure.add_axes((theme.TEXT_LEFT, theme.PLOT_BOTTOM, 1 - 2 * theme.TEXT_LEFT, 0.2))
        ax.set_axis_off()
        x = _date_positions(spec)
        y = _series_arrays(spec)[0]
        ax.fill_between(x, y, np.nanmin(y), color=theme.series_colour(0), alpha=0.15, linewidth=0)
        ax.plot(x, y, color=theme.series_colour(0), linewidth=theme.LINE_WIDTH)
        _mark_lone_points(ax, x, y, theme.series_colour(0))
        ax.set_xlim(x[0], x[-1] if len(x) > 1 else x[0] + 1)


def _kpi_change_line(spec: ChartSpec, kpi: KpiTile) -> tuple[str, str]:
    """The line under the headline; it compares only two known figures, since a missing one is not a zero."""
    value, previous = kpi.value, kpi.previous_value
    previous_text = format_value(previous, spec.unit, locale=spec.locale, currency=spec.currency)
    if value is None:
        # Nothing to compare, but the earlier figure alone is still worth knowing.
        return ("" if previous is None else f"Previous period: {previous_text}"), theme.MUTED_TEXT_COLOUR
    change = kpi.change_pct
    if change is None and previous:
        change = (value - previous) / abs(previous)
    if change is None and previous is None:
        return "", theme.MUTED_TEXT_COLOUR
    if (
        value == previous
        or change == 0
        or (spec.unit == "percent" and not points_moved(value, previous or 0.0))
        or (spec.unit == "number" and previous is not None and not score_moved(value, previous))
    ):
        return f"■ no change vs previous period ({previous_text})", theme.NEUTRAL_COLOUR
    rising = change > 0 if change is not None else value > (previous or 0.0)
    good = rising == (kpi.direction == "up_is_good")
    # Arrow, colour and word together: the meaning never rests on colour alone.
    arrow = "▲" if rising else "▼"
    verdict = "better" if good else "worse"
    if spec.unit == "percent" and previous is not None:
        # A rate moves by points ("+3.8 pts"), never by a percentage of a percentage.
        line = f"{arrow} {format_points(value - previous, locale=spec.locale)} vs previous period ({previous_text}) · {verdict}"
    elif spec.unit == "number" and previous is not None:
        # A score moves in its own units ("+0.20"), as the sentence says it ("up 0.2 from 3.9").
        moved = format_score_change(value, previous, locale=spec.locale)
        line = f"{arrow} {moved} vs previous period ({previous_text}) · {verdict}"
    elif change is None:
        # A change from zero has a direction but no percentage.
        line = f"{arrow} {'up' if rising else 'down'} from {previous_text} in previous period · {verdict}"
    else:
        since = "" if previous is None else f" ({previous_text})"
        line = f"{arrow} {format_change(change, locale=spec.locale)} vs previous period{since} · {verdict}"
    return line, theme.GOOD_COLOUR if good else theme.BAD_COLOUR


def _paint_cohort_heatmap(figure: Figure, spec: ChartSpec) -> None:
    assert spec.heatmap is not None  # guaranteed by ChartSpec validation
    grid = np.array([[np.nan if v is None else v for v in row] for row in spec.heatmap], dtype=float)
    widest_label = max(len(_shorten(c, _MAX_LABEL_CHARS)) for c in spec.categories)
    left = (
        theme.TEXT_LEFT + widest_label * theme.TICK_PT * _GLYPH_WIDTH_EM / 72 / theme.FIGURE_INCHES[0] + 0.02
    )
    ax = figure.add_axes(
        (left, theme.PLOT_BOTTOM, theme.MARGIN_RIGHT - left, theme.PLOT_TOP - theme.PLOT_BOTTOM)
    )
    theme.style_value_axes(ax, grid_axis="none")
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    finite_max = float(np.nanmax(grid)) if np.isfinite(grid).any() else 1.0
    top = 1.0 if spec.unit == "percent" and finite_max <= 1.0 else finite_max or 1.0
    colours = matplotlib.colormaps[theme.HEATMAP_COLOURMAP].with_extremes(bad=theme.BACKGROUND)
    norm = Normalize(vmin=0.0, vmax=top)
    ax.imshow(np.ma.masked_invalid(grid), cmap=colours, norm=norm, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(spec.heatmap_columns)), [_shorten(c, 10) for c in spec.heatmap_columns])
    ax.set_yticks(range(len(spec.categories)), [_shorten(c, _MAX_LABEL_CHARS) for c in spec.categories])
    if grid.size > _MAX_HEATMAP_ANNOTATED_CELLS:
        return
    cell_size = min(11.0, 9.0 + 24 / max(grid.shape[1], 1))
    for (row, column), value in np.ndenumerate(grid):
        if np.isnan(value):
            continue
        red, green, blue, _ = colours(norm(value))
        ink = theme.TEXT_COLOUR if 0.299 * red + 0.587 * green + 0.114 * blue > 0.55 else theme.BACKGROUND
        ax.text(
            column,
            row,
            # Whole percents keep every cell the same width; 43.3% vs 43% is noise at this size.
            _axis_text(spec, round(float(value), 2) if spec.unit == "percent" else float(value)),
            ha="center",
            va="center",
            fontsize=cell_size,
            color=ink,
        )


_KIND_PAINTERS: dict[str, Callable[[Figure, ChartSpec], None]] = {
    "line": _paint_line,
    "area": _paint_area,
    "bar": _paint_bar,
    "stacked_bar": _paint_stacked_bar,
    "funnel": _paint_funnel,
    "table": _paint_table,
    "kpi_tile": _paint_kpi_tile,
    "cohort_heatmap": _paint_cohort_heatmap,
}


# --- output ------------------------------------------------------------------------------------


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _shorten_apart(texts: Sequence[str], limit: int) -> list[str]:
    """Each text cut to `limit`; those the cut would make alike ("Open clinic evenin…" three times, for three
    campaigns of one name told apart by their codes) keep their start and the part where they differ:
    "Open c…2026-08-op…"."""
    cut = [_shorten(text, limit) for text in texts]
    alike: dict[str, list[str]] = {}
    for text, short in zip(texts, cut, strict=True):
        alike.setdefault(short, []).append(text)
    shown = []
    for text, short in zip(texts, cut, strict=True):
        group = alike[short]
        if len(group) == 1 or short == text:
            shown.append(short)
            continue
        same = next(  # where the texts of the group part
            (i for i, letters in enumerate(zip(*group, strict=False)) if len(set(letters)) > 1),
            min(map(len, group)),
        )
        head = text[: limit // 3].rstrip()
        room = limit - len(head) - 2  # the two "…"
        start = max(len(head), same - room * 2 // 3)
        piece = text[start : start + room].strip()
        shown.append(f"{head}…{piece}{'…' if start + room < len(text) else ''}")
    return shown


def _encode_png(rgba: np.ndarray, *, text: dict[str, str]) -> bytes:
    """A minimal RGB PNG writer; the chart has no transparency, so the alpha channel is dropped."""
    height, width = rgba.shape[:2]
    scanlines = np.empty((height, width * 3 + 1), dtype=np.uint8)
    scanlines[:, 0] = 0  # filter type "None" on every row
    scanlines[:, 1:] = rgba[:, :, :3].reshape(height, width * 3)
    compressed = zlib.compress(scanlines.tobytes(), _PNG_COMPRESSION_LEVEL)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    metadata = b"".join(
        _png_chunk(b"iTXt", key.encode("latin-1") + b"\x00\x00\x00\x00\x00" + value.encode("utf-8"))
        for key, value in text.items()
        if value
    )
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + metadata
        + _png_chunk(b"IDAT", compressed)
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
