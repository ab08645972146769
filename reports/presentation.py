"""How a saved report is drawn: the chart kind its builder picked, the order of its breakout values, and top N.

A report definition may carry, beside its "query", a "chart" object:
    {"kind": "auto" | "line" | "bar" | "stacked_bar" | "table" | "number",
     "sort": "largest" | "smallest" | "name", "top": 1..50 or null,
     "at_least": number or null, "at_most": number or null}
`at_least`/`at_most` keep the split's values whose figure for the period lies in that range (inclusive), in the
metric's own unit as stored: a fraction for rates (0.25 is 25 %), seconds for times, the amount for money.
The same ChartSpec comes out for the web page (SVG) and for chat and scheduled deliveries (PNG), so what a
manager previews in the builder is what lands in Slack, Telegram and email.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, cast, get_args

from domain.dates_said import day_month, day_month_year
from reports.answer import (
    Answer,
    chart_for,
    named_value,
    series_label,
    split_bars,
    standing_alone,
    unnamed,
)
from reports.charts.formatting import format_value
from reports.charts.spec import MAX_SERIES, TARGET_KINDS, ChartKind, ChartSpec, KpiTile, Series
from reports.metrics import Metric, dimension_words
from reports.periods import Grain, zone
from reports.query import MetricQuery, QueryResult, SeriesResult

PresentationKind = Literal["auto", "line", "bar", "stacked_bar", "table", "number"]
PRESENTATION_KINDS: tuple[PresentationKind, ...] = get_args(PresentationKind)
SortOrder = Literal["largest", "smallest", "name"]
SORT_ORDERS: tuple[SortOrder, ...] = get_args(SortOrder)
MAX_TOP = 50

#: How each choice reads in the builder.
KIND_WORDS: dict[PresentationKind, str] = {
    "auto": "Best fit",
    "line": "Line",
    "bar": "Bars",
    "stacked_bar": "Stacked bars",
    "table": "Table",
    "number": "Single number",
}
SORT_WORDS: dict[SortOrder, str] = {
    "largest": "Largest first",
    "smallest": "Smallest first",
    "name": "By name",
}


class PresentationError(ValueError):
    """A chart choice that does not fit the question; the message says what would."""


@dataclass(frozen=True)
class Presentation:
    kind: PresentationKind = "auto"
    sort: SortOrder = "largest"
    top: int | None = None
    #: Keep only the split's values whose figure lies in [at_least, at_most] (None: no bound).
    at_least: float | None = None
    at_most: float | None = None

    def as_definition(self) -> dict[str, Any]:
        shape: dict[str, Any] = {"kind": self.kind, "sort": self.sort, "top": self.top}
        if self.ranged:
            shape.update(at_least=self.at_least, at_most=self.at_most)
        return shape

    def ranking(self, query: MetricQuery) -> int | None:
        """The N a cut to the N largest keeps, which the answer's sentence names too ("BER €10,829.90, LON
        €9,280.12, VIE €7,172.00 and 3 more"); None for any other order, a range, or stacked bars split two
        ways (which keep the N largest of the first split's values, where the sentence would name pairs)."""
        two_ways = self.kind == "stacked_bar" and query.grain is None and len(query.dimensions) == 2
        if self.sort != "largest" or self.ranged or two_ways:
            return None
        return self.top

    @property
    def cut_words(self) -> str | None:
        """How the cut reads beside its split: "top 3", "bottom 3", "first 3"; None for every value."""
        return f"{_CUT_WORDS[self.sort]} {self.top}" if self.top else None

    @property
    def ranged(self) -> bool:
        return self.at_least is not None or self.at_most is not None

    def keeps(self, figure: float | None) -> bool:
        if not self.ranged:
            return True
        if figure is None:
            return False
        return (self.at_least is None or figure >= self.at_least) and (
            self.at_most is None or figure <= self.at_most
        )


def presentation_of(definition: Any) -> Presentation:
    """The "chart" part of a report definition (absent: best fit, largest first, everything)."""
    raw = definition.get("chart") if isinstance(definition, dict) else None
    if raw is None:
        return Presentation()
    if not isinstance(raw, dict) or set(raw) - {"kind", "sort", "top", "at_least", "at_most"}:
        raise PresentationError('"chart" is an object with kind, sort, top, at_least and at_most')
    kind = raw.get("kind", "auto")
    if kind not in PRESENTATION_KINDS:
        raise PresentationError(f"chart kind must be one of {', '.join(PRESENTATION_KINDS)}, got {kind!r}")
    sort = raw.get("sort", "largest")
    if sort not in SORT_ORDERS:
        raise PresentationError(f"sort must be one of {', '.join(SORT_ORDERS)}, got {sort!r}")
    top = raw.get("top")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP):
        raise PresentationError(f"top is a whole number from 1 to {MAX_TOP}, or empty for every value")
    bounds = []
    for key in ("at_least", "at_most"):
        bound = raw.get(key)
        if bound is not None and (
            isinstance(bound, bool) or not isinstance(bound, int | float) or not math.isfinite(bound)
        ):
            raise PresentationError(f"{key} is a number, or empty for no bound")
        bounds.append(None if bound is None else float(bound))
    return Presentation(cast(PresentationKind, kind), cast(SortOrder, sort), top, bounds[0], bounds[1])


def check_fits(query: MetricQuery, presentation: Presentation, metric: Metric) -> None:
    """Refuse a chart that cannot show this question, before anything is saved or run."""
    split = bool(query.dimensions)
    over_time = query.grain is not None
    if presentation.kind == "line" and not over_time:
        raise PresentationError("a line needs the figures over time: pick daily, weekly or monthly")
    if presentation.kind == "bar" and not (split or over_time):
        raise PresentationError("bars need a split or the figures over time; a single figure is a number")
    if presentation.kind == "stacked_bar":
        if not (split and over_time) and len(query.dimensions) < 2:
            raise PresentationError(
                "stacked bars need a split and the figures over time, or a split by two dimensions"
            )
        if metric.aggregation not in ("sum", "count"):
            raise PresentationError(
                f"{metric.label} is a rate or a distinct count, so its parts do not stack; use bars or a line"
            )
    if presentation.kind == "number" and split:
        raise PresentationError("a single number cannot be split; choose “Nothing” under Split by")
    if presentation.top is not None and not split:
        raise PresentationError("top N keeps the largest values of a split; choose a split or leave it empty")
    if presentation.ranged and not split:
        raise PresentationError("a range keeps the values of a split whose figure lies in it; choose a split")
    low, high = presentation.at_least, presentation.at_most
    if low is not None and high is not None and low > high:
        raise PresentationError("the range starts above where it ends")


def ordered(series: Sequence[SeriesResult], presentation: Presentation) -> tuple[SeriesResult, ...]:
    """The breakout values in the range, in the chosen order, cut to top N (figures without a value last).
    A cut to N ranks only real values: revenue no campaign brought is no campaign, so it is never the
    "top campaign" (it comes after them, and is cut with the rest)."""
    series = [s for s in series if presentation.keeps(s.total)]
    if presentation.sort == "name":
        listed = sorted(series, key=lambda s: (s.dimension_value or "").lower())
    else:
        sign = -1.0 if presentation.sort == "largest" else 1.0
        ranked = presentation.top is not None
        listed = sorted(
            series, key=lambda s: (s.total is None, ranked and unnamed(s), sign * (s.total or 0.0))
        )
    return tuple(listed[: presentation.top] if presentation.top else listed)


def present(found: Answer, presentation: Presentation) -> ChartSpec:
    """The chart a report shows: the answer's own best fit, or the kind its builder picked."""
    result = found.result
    metric = result.metrics[0]
    everything = result.series_for(metric.name)
    header = found.chart
    targets = tuple(a for a in found.chart.annotations if a.kind == "target")
    if result.grain is None and presentation.kind == "stacked_bar" and len(result.dimensions) == 2:
        return _stacked_two_ways(header, everything, presentation, result, targets)
    series = ordered(everything, presentation) if result.dimension else everything
    if result.dimension:
        # Said from scratch for what this chart draws: the range, top N, and how many of those fit it.
        in_range = sum(1 for s in everything if presentation.keeps(s.total))
        every_value = presentation.kind in ("bar", "table") and result.grain is None
        drawn = len(series) if every_value else min(len(series), MAX_SERIES)
        words = split_words(
            f"by {dimension_words(result.dimension or '')}",
            presentation,
            header,
            len(everything),
            in_range,
            len(series),
            drawn,
        )
        header = replace(header, subtitle=words)
    kind = presentation.kind
    if kind in ("auto", "line"):
        spec = chart_for(
            result, series, found.summary, header.locale, header.currency or "EUR", line_asked=kind == "line"
        )
        return replace(spec, title=header.title, subtitle=header.subtitle)
    if kind == "number":
        only = series[0] if series else None
        direction: Any = "down_is_good" if metric.direction == "down_is_good" else "up_is_good"
        tile = KpiTile.compare(
            only.total if only else None, only.comparison_total if only else None, direction
        )
        return _reshaped(header, "kpi_tile", kpi=tile)
    if kind == "table":
        return _table(header, result, series)
    chosen: ChartKind = "stacked_bar" if kind == "stacked_bar" else "bar"
    if result.grain is None:
        return _reshaped(
            header,
            chosen,
            categories=tuple(standing_alone(series_label(result, s)) for s in series),
            series=split_bars(result, metric.label, series)
            if result.dimension and chosen == "bar"
            else (Series(metric.label, tuple(s.total for s in series)),),
            annotations=targets if chosen in TARGET_KINDS else (),
        )
    shown = series[:MAX_SERIES]
    buckets = tuple(start for start, _ in shown[0].points) if shown else ()
    return _reshaped(
        _over_time(header, result.grain, result.dimension),
        chosen,
        categories=tuple(bucket_label(b, result.grain, result.range.timezone) for b in buckets),
        series=tuple(
            Series(
                standing_alone(series_label(result, s)) if s.dimension_value is not None else metric.label,
                tuple(v for _, v in s.points),
            )
            for s in shown
        ),
        annotations=targets,
    )


#: How a cut to top N reads, by the order chosen.
_CUT_WORDS: dict[SortOrder, str] = {"largest": "top", "smallest": "bottom", "name": "first"}


def split_words(
    split: str,
    presentation: Presentation,
    header: ChartSpec,
    total: int,
    in_range: int,
    kept: int,
    drawn: int,
) -> str:
    """ "by location, only those of €1,000.00 or more (5 of 9), top 3 of 5", "by location, top 10 of 23, 8 of
    those drawn", or "by location and channel, top 8 of 33" when the chart alone had to leave some out."""
    words = [split]
    if presentation.ranged:
        counted = f" ({in_range} of {total})" if in_range < total else ""
        words.append(f"{_range_words(presentation, header)}{counted}")
    if kept < in_range:
        words.append(f"{_CUT_WORDS[presentation.sort]} {kept} of {in_range}")
    if drawn < kept:
        cut = kept < in_range or in_range < total
        words.append(
            f"{drawn} of those drawn" if cut else f"{_CUT_WORDS[presentation.sort]} {drawn} of {kept}"
        )
    return ", ".join(words)


def _stacked_two_ways(
    header: ChartSpec,
    pairs: Sequence[SeriesResult],
    presentation: Presentation,
    result: QueryResult,
    targets: tuple[Any, ...],
) -> ChartSpec:
    """A bar per value of the first dimension, stacked by the second: "by location, stacked by channel".

    The order, top N and range apply to the bars' totals (a clinic is kept or not, never half of it). Only
    sums and counts stack (check_fits), so stacks past the chart's series limit add up into "Other".
    """
    firsts: dict[str, float] = {}
    seconds: dict[str, float] = {}
    cells: dict[tuple[str, str], float] = {}
    for s in pairs:
        first, second = s.dimension_values
        firsts[first] = firsts.get(first, 0.0) + (s.total or 0.0)
        seconds[second] = seconds.get(second, 0.0) + (s.total or 0.0)
        cells[(first, second)] = s.total or 0.0
    totals = [
        SeriesResult(pairs[0].metric if pairs else "", first, first, (), total)
        for first, total in firsts.items()
    ]
    bars = [t.dimension_value or "" for t in ordered(totals, presentation)]
    in_range = sum(1 for t in totals if presentation.keeps(t.total))
    first, second = result.dimensions
    split = f"by {dimension_words(first)}, stacked by {dimension_words(second)}"
    header = replace(
        header, subtitle=split_words(split, presentation, header, len(totals), in_range, len(bars), len(bars))
    )
    ranked = sorted(seconds, key=lambda v: (-seconds[v], v))
    kept = ranked if len(ranked) <= MAX_SERIES else ranked[: MAX_SERIES - 1]
    stacks = [
        Series(
            standing_alone(named_value(result, second, value)) if value else "(none)",
            tuple(cells.get((bar, value), 0.0) for bar in bars),
        )
        for value in kept
    ]
    if len(kept) < len(ranked):
        rest = ranked[len(kept) :]
        other = "Other" if "Other" not in {s.name for s in stacks} else "All other values"
        stacks.append(Series(other, tuple(sum(cells.get((bar, r), 0.0) for r in rest) for bar in bars)))
    return _reshaped(
        header,
        "stacked_bar",
        categories=tuple(
            standing_alone(named_value(result, first, bar)) if bar else "(none)" for bar in bars
        ),
        series=tuple(stacks),
        annotations=targets,
    )


def _table(header: ChartSpec, result: QueryResult, series: Sequence[SeriesResult]) -> ChartSpec:
    metric_label = header.title
    grain, tz = result.grain, result.range.timezone
    if grain is None:
        rows = tuple(
            standing_alone(series_label(result, s)) if s.dimension_value is not None else "All"
            for s in series
        )
        columns = [Series(metric_label, tuple(s.total for s in series))]
        if result.comparison_range is not None:
            columns.append(Series("Before", tuple(s.comparison_total for s in series)))
        return _reshaped(header, "table", categories=rows, series=tuple(columns))
    shown = series[:MAX_SERIES]
    buckets = tuple(start for start, _ in shown[0].points) if shown else ()
    return _reshaped(
        _over_time(header, grain, None if not shown or shown[0].dimension_value is None else "split"),
        "table",
        categories=tuple(bucket_label(b, grain, tz) for b in buckets),
        series=tuple(
            Series(
                standing_alone(series_label(result, s)) if s.dimension_value is not None else metric_label,
                tuple(v for _, v in s.points),
            )
            for s in shown
        ),
    )


def _over_time(header: ChartSpec, grain: Grain, dimension: str | None) -> ChartSpec:
    """Time buckets drawn as categories say so: "each week, by location" (the export's first column is Week)."""
    split = header.subtitle if dimension and header.subtitle else None
    return replace(header, subtitle=f"each {grain}" + (f", {split}" if split else ""))


def _reshaped(header: ChartSpec, kind: ChartKind, **shape: Any) -> ChartSpec:
    blank: dict[str, Any] = {
        "series": (),
        "categories": (),
        "x_dates": (),
        "annotations": (),
        "kpi": None,
        "heatmap": None,
        "heatmap_columns": (),
    }
    return replace(header, kind=kind, **{**blank, **shape})


def _range_words(presentation: Presentation, header: ChartSpec) -> str:
    """ "only those from €1,000.00 to €5,000.00", in the chart's own unit and locale."""

    def shown(value: float) -> str:
        return format_value(value, header.unit or "number", locale=header.locale, currency=header.currency)

    low, high = presentation.at_least, presentation.at_most
    if low is not None and high is not None:
        return f"only those from {shown(low)} to {shown(high)}"
    if low is not None:
        return f"only those of {shown(low)} or more"
    assert high is not None
    return f"only those up to {shown(high)}"


def bucket_label(start: datetime, grain: Grain, tz: str) -> str:
    """A bucket as a row or bar reads it, in the business's timezone: "3 Nov 2026", "w/c 3 Nov 2026",
    "Nov 2026", "3 Nov 14:00"."""
    local = start.astimezone(zone(tz))
    if grain == "hour":
        return f"{day_month(local)} {local:%H}:00"
    if grain == "week":
        return f"w/c {day_month_year(local)}"
    if grain == "month":
        return f"{local:%b %Y}"
    if grain == "quarter":
        return f"Q{(local.month - 1) // 3 + 1} {local:%Y}"
    return day_month_year(local)
