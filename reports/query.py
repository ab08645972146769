"""The KPI query layer: validate a question against the registry, then answer it from rollups or raw facts.

Every name in a query (metric, dimension, grain, operator) is checked against fixed tables and
rejected with the allowed names listed; filter values only ever travel as bound parameters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from reports.metrics import REGISTRY, Metric, UnknownName, get_metric
from reports.periods import COMPARISONS as COMPARISONS  # re-exported (with Comparison) for saved reports
from reports.periods import (
    GRAINS,
    Grain,
    PeriodSpec,
    TimeRange,
    bucket_floor,
    bucket_starts,
    comparison_basis,
    comparison_range,
    next_bucket,
    previous_period,
    resolve_period,
)
from reports.periods import Comparison as Comparison
from storage.analytics.customer_days import active_customers, churn_from_days, returning_customers
from storage.analytics.facts import METRIC_MEASURES, SETTLED_AFTER, UNSETTLED_SOURCES, MetricMeasures
from storage.analytics.queries import VALUE_JOINER, FactFilter, churn_counts, measure_values
from storage.analytics.rollup_store import RollupWatermark, read_rollup, read_watermark
from storage.database import Database

Operator = Literal["eq", "ne", "in", "not_in"]
OPERATORS: tuple[Operator, ...] = get_args(Operator)

MAX_METRICS = 8
MAX_FILTERS = 8
MAX_FILTER_VALUES = 50
MAX_VALUE_LENGTH = 128
MAX_BUCKETS = 5000
#: A report splits by at most two dimensions ("by location and source channel").
MAX_DIMENSIONS = 2
#: How the values of a two-way split read together: "BER · whatsapp".
SHOWN_JOINER = " · "

#: Ratios come back as (numerator, denominator); a bucket with no facts has both at zero.
Fraction = tuple[float, float]
#: (bucket start as epoch seconds, dimension value): aware datetimes hash slowly, ints do not.
CellKey = tuple[int, str]


@dataclass(frozen=True)
class BucketAxis:
    """The bucket starts of a range at a grain, and the same instants as epoch seconds."""

    starts: tuple[datetime, ...]
    seconds: tuple[int, ...]


@lru_cache(maxsize=256)
def bucket_axis(time_range: TimeRange, grain: Grain, tz: str) -> BucketAxis:
    """Bucket starts, cached per (range, grain, tz): a dashboard asks the same ranges again and again."""
    starts = tuple(bucket_starts(time_range, grain, tz))
    return BucketAxis(starts, tuple(int(start.timestamp()) for start in starts))


@dataclass(frozen=True)
class Filter:
    """Keep facts whose `dimension` is (eq/in) or is not (ne/not_in) `value`."""

    dimension: str
    operator: Operator
    value: str | tuple[str, ...]

    @property
    def values(self) -> tuple[str, ...]:
        return (self.value,) if isinstance(self.value, str) else tuple(self.value)


@dataclass(frozen=True)
class MetricQuery:
    metrics: tuple[str, ...]
    period: PeriodSpec | TimeRange
    grain: Grain | None = None
    dimensions: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    comparison: Comparison | None = None


@dataclass(frozen=True)
class SeriesResult:
    """One metric for one dimension value (None: not split); points are (bucket start in UTC, value).

    Split two ways, `dimension_value` is both values as read ("BER · whatsapp") and `dimension_values`
    holds each, in the order of the query's dimensions.
    """

    metric: str
    dimension_value: str | None
    name: str
    points: tuple[tuple[datetime, float | None], ...]
    total: float | None
    comparison_total: float | None = None
    dimension_values: tuple[str, ...] = ()
    #: What a ratio's or an average's total is out of (the appointments due behind a no-show rate); None for
    #: counts and sums.
    total_basis: float | None = None
    #: Over time and compared: the compared period's figure per bucket, the i-th bucket of each period side
    #: by side (day 1 of this month beside day 1 of the last); empty otherwise.
    comparison_points: tuple[tuple[datetime, float | None], ...] = ()


@dataclass(frozen=True)
class QueryResult:
    metrics: tuple[Metric, ...]
    range: TimeRange
    comparison_range: TimeRange | None
    grain: Grain | None
    dimensions: tuple[str, ...]
    series: tuple[SeriesResult, ...]
    data_as_of: datetime
    source: Literal["rollup", "raw"]
    #: What the comparison range is, in words after "vs": "the same days last month", "the 7 days before".
    comparison_basis: str | None = None
    #: What people call the stored values, per dimension, where they differ ({"location": {"BER": "Berlin
    #: Mitte"}}); the answer fills it in (reports.answer), the query leaves it empty.
    names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def dimension(self) -> str | None:
        """The split as one name: `location`, `location_and_source_channel` (None: not split)."""
        return "_and_".join(self.dimensions) or None

    @property
    def comparison_totals(self) -> dict[str, float | None]:
        return {s.name: s.comparison_total for s in self.series}

    def series_for(self, metric: str) -> tuple[SeriesResult, ...]:
        return tuple(s for s in self.series if s.metric == metric)


def _require_text(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise UnknownName(what, repr(value), ())
    return value


def validate_query(query: MetricQuery) -> tuple[Metric, ...]:
    """Check every name and value bound of `query`; returns the metrics it names (synonyms resolved)."""
    if not query.metrics:
        raise ValueError(f"name at least one metric; allowed: {', '.join(sorted(REGISTRY))}")
    if len(query.metrics) > MAX_METRICS:
        raise ValueError(f"at most {MAX_METRICS} metrics per question, got {len(query.metrics)}")
    metrics = tuple(get_metric(_require_text("metric", name)) for name in query.metrics)
    if len({m.name for m in metrics}) != len(metrics):
        raise ValueError("a metric is named twice")
    if not isinstance(query.period, PeriodSpec | TimeRange):
        raise ValueError("period must be a PeriodSpec or a TimeRange")

    if query.grain is not None:
        grain = _require_text("grain", query.grain)
        if grain not in GRAINS:
            raise UnknownName("grain", grain, GRAINS)
        for metric in metrics:
            if grain not in metric.grains:
                raise UnknownName(f"grain for {metric.name}", grain, metric.grains)

    if len(query.dimensions) > MAX_DIMENSIONS:
        raise ValueError(f"split by at most {MAX_DIMENSIONS} dimensions, got {len(query.dimensions)}")
    for name in query.dimensions:
        _check_dimension(_require_text("dimension", name), metrics)
    if len(set(query.dimensions)) != len(query.dimensions):
        raise ValueError("a dimension is named twice in the split")
    if len(query.dimensions) > 1 and "currency" in query.dimensions:
        raise ValueError("split by currency on its own: amounts in different currencies are never added up")

    if len(query.filters) > MAX_FILTERS:
        raise ValueError(f"at most {MAX_FILTERS} filters, got {len(query.filters)}")
    for item in query.filters:
        _check_dimension(_require_text("dimension", item.dimension), metrics)
        operator = _require_text("operator", item.operator)
        if operator not in OPERATORS:
            raise UnknownName("operator", operator, OPERATORS)
        _check_filter_values(item)

    if query.comparison is not None and query.comparison not in COMPARISONS:
        raise UnknownName("comparison", _require_text("comparison", query.comparison), COMPARISONS)
    return metrics


def _check_dimension(name: str, metrics: Sequence[Metric]) -> None:
    for metric in metrics:
        if name not in metric.dimensions:
            allowed = set(metric.dimensions)
            for other in metrics:
                allowed &= set(other.dimensions)
            raise UnknownName(f"dimension for {metric.name}", name, allowed or metric.dimensions)


def _check_filter_values(item: Filter) -> None:
    if isinstance(item.value, str):
        values: tuple[object, ...] = (item.value,)
    elif isinstance(item.value, tuple):
        values = item.value
    else:
        raise ValueError(f"filter on {item.dimension}: value must be text or a tuple of texts")
    if not values or len(values) > MAX_FILTER_VALUES:
        raise ValueError(f"filter on {item.dimension}: give 1 to {MAX_FILTER_VALUES} values")
    if item.operator in ("eq", "ne") and len(values) != 1:
        raise ValueError(f"filter on {item.dimension}: {item.operator} takes exactly one value")
    for value in values:
        if not isinstance(value, str):
            raise ValueError(f"filter on {item.dimension}: values must be text, got {type(value).__name__}")
        if len(value) > MAX_VALUE_LENGTH or "\x00" in value:
            raise ValueError(f"filter on {item.dimension}: values are at most {MAX_VALUE_LENGTH} characters")


def metric_value(metric: Metric, numerator: float, denominator: float) -> float | None:
    """The figure shown: the numerator for counts and sums, the quotient for ratios and averages."""
    if metric.aggregation in ("ratio", "average"):
        return numerator / denominator if denominator else None
    return numerator


@dataclass
class _Values:
    buckets: dict[CellKey, Fraction]
    totals: dict[str, Fraction]
    from_rollup: bool


class _Answerer:
    """Answers one query inside one read session, choosing rollup or raw per metric and part."""

    def __init__(
        self,
        session: AsyncSession,
        dialect: str,
        watermark: RollupWatermark | None,
        tz: str,
        dimensions: tuple[str, ...],
        filters: tuple[FactFilter, ...],
        now: datetime,
    ) -> None:
        self.now = now
        self.session = session
        self.dialect = dialect
        self.watermark = watermark
        self.tz = tz
        self.dimensions = dimensions
        #: The one dimension a rollup row is split by ('' for the total); a two-way split has none.
        self.dimension = dimensions[0] if len(dimensions) == 1 else ""
        self.filters = filters
        self.used_raw = False

    def _rollup_slice(self, metric: Metric) -> tuple[str, FactFilter | None, bool] | None:
        """Which rollup rows answer for `metric`: (the dimension read, the filter on its values, whether the
        values read add up to one total), or None when no rows can. Rollups hold one dimension per row, so a
        filter is served on the split dimension, or, with no split, as the dimension read: "messages sent by
        sms" is the sms rows. Several values add up only for a sum (a customer may be in more than one)."""
        if not self.filters:
            return self.dimension, None, False
        if len(self.filters) != 1:
            return None
        only = self.filters[0]
        if only.dimension == self.dimension:
            return self.dimension, only, False
        if not self.dimensions and (only.operator == "eq" or (only.operator == "in" and metric.is_additive)):
            return only.dimension, only, True
        return None

    def _rollup_grain(self, metric: Metric, time_range: TimeRange, grain: Grain | None) -> Grain | None:
        """A rolled-up grain whose buckets tile `time_range` exactly (the query's own grain if given)."""
        if self.watermark is None or metric.name not in METRIC_MEASURES or len(self.dimensions) > 1:
            return None
        sources = {m.source for m in METRIC_MEASURES[metric.name].measures}
        if sources & UNSETTLED_SOURCES and time_range.end > self.now - SETTLED_AFTER:
            return None  # appointments still changing (tomorrow's bookings, today's no-shows): read raw
        rows = self._rollup_slice(metric)
        if rows is None:
            return None
        candidates: list[str] = [grain] if grain is not None else list(reversed(GRAINS))
        for candidate in candidates:
            if not self.watermark.covers(metric.name, candidate, self.tz, rows[0]):
                continue
            typed: Grain = candidate  # type: ignore[assignment]
            start_aligned = bucket_floor(time_range.start, typed, self.tz) == time_range.start
            end_aligned = bucket_floor(time_range.end, typed, self.tz) == time_range.end
            if start_aligned and end_aligned:
                return typed
        return None

    def _days_fold_into(self, metric: Metric, time_range: TimeRange, grain: Grain | None) -> bool:
        """Whether the day rollups answer a coarser `grain` that does not tile the range: a sum over whole days."""
        return (
            grain is not None
            and GRAINS.index(grain) > GRAINS.index("day")
            and metric.is_additive
            and self._rollup_grain(metric, time_range, "day") == "day"
        )

    async def values(self, metric: Metric, time_range: TimeRange, grain: Grain | None) -> _Values:
        if metric.name == "churn_rate":
            return await self._churn(time_range, grain)
        parts = METRIC_MEASURES[metric.name]
        rollup_grain = self._rollup_grain(metric, time_range, grain)
        if rollup_grain is None and self._days_fold_into(metric, time_range, grain):
            # "Last 90 days by week": whole days, but not whole weeks. A sum folds from the day rollups (the
            # same buckets a raw count gives), which also hold what retention has since removed.
            assert grain is not None
            folded: dict[CellKey, list[float]] = defaultdict(lambda: [0.0, 0.0])
            for (stamp, value), (numerator, denominator) in (
                await self._from_rollup(metric, time_range, "day")
            ).items():
                start = bucket_floor(datetime.fromtimestamp(stamp, UTC), grain, self.tz)
                folded[(int(start.timestamp()), value)][0] += numerator
                folded[(int(start.timestamp()), value)][1] += denominator
            buckets = {key: (f[0], f[1]) for key, f in folded.items()}
            return _Values(buckets, _sum_by_value(buckets), True)
        if rollup_grain is not None:
            buckets = await self._from_rollup(metric, time_range, rollup_grain)
            # A distinct count over exactly one bucket is that bucket's row; over several it is not a sum.
            single_bucket = len(bucket_axis(time_range, rollup_grain, self.tz).starts) == 1
            if metric.is_additive or single_bucket:
                return _Values(buckets if grain else {}, _sum_by_value(buckets), True)
            if grain is not None:
                totals = await self._from_customer_days(metric, time_range)
                if totals is None:
                    totals = (await self._raw(parts, time_range, None)).totals
                return _Values(buckets, totals, True)
        if grain is None and (totals := await self._from_customer_days(metric, time_range)) is not None:
            return _Values({}, totals, True)
        raw_totals = await self._raw(parts, time_range, None)
        if grain is None:
            return raw_totals
        raw_buckets = await self._raw(parts, time_range, grain)
        return _Values(raw_buckets.buckets, raw_totals.totals, False)

    def _customer_days_cover(self, *moments: datetime) -> bool:
        """Whether the kept customer days answer for ranges bounded by these moments (local midnights)."""
        watermark = self.watermark
        if watermark is None or not watermark.customer_days or watermark.timezone != self.tz:
            return False
        if self.dimensions or self.filters:
            return False
        return all(bucket_floor(moment, "day", self.tz) == moment for moment in moments)

    async def _from_customer_days(self, metric: Metric, time_range: TimeRange) -> dict[str, Fraction] | None:
        """Active or returning customers over the whole range from the kept days; None where they cannot."""
        if metric.name not in ("active_customers", "returning_customers"):
            return None
        if not self._customer_days_cover(time_range.start, time_range.end):
            return None
        # Active customers need only the period's days; returning ones also every day before it.
        count = active_customers if metric.name == "active_customers" else returning_customers
        return {"": (float(await count(self.session, time_range.start, time_range.end)), 0.0)}

    async def _from_rollup(
        self, metric: Metric, time_range: TimeRange, grain: Grain
    ) -> dict[CellKey, Fraction]:
        rows = self._rollup_slice(metric)
        assert rows is not None  # only asked where `_rollup_grain` found rows
        dimension, value_filter, added_up = rows
        cells = await read_rollup(
            self.session,
            metric=metric.name,
            grain=grain,
            dimension=dimension,
            start=time_range.start,
            end=time_range.end,
            value_filter=value_filter,
        )
        if not added_up:
            return cells
        total: dict[CellKey, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for (stamp, _value), (numerator, denominator) in cells.items():
            total[(stamp, "")][0] += numerator
            total[(stamp, "")][1] += denominator
        return {key: (f[0], f[1]) for key, f in total.items()}

    async def _raw(self, parts: MetricMeasures, time_range: TimeRange, grain: Grain | None) -> _Values:
        self.used_raw = True
        fractions: dict[tuple[datetime | None, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
        for position, measure in enumerate(parts.measures):
            found = await measure_values(
                self.session,
                self.dialect,
                [measure],
                start=time_range.start,
                end=time_range.end,
                grain=grain,
                tz=self.tz,
                dimensions=self.dimensions,
                filters=self.filters,
            )
            for key, measured in found.items():
                fractions[key][position] = measured[measure.key]
        buckets = {(int(b.timestamp()), v): (f[0], f[1]) for (b, v), f in fractions.items() if b is not None}
        totals = {v: (f[0], f[1]) for (b, v), f in fractions.items() if b is None}
        return _Values(buckets, totals if grain is None else _sum_by_value(buckets), False)

    async def _churn(self, time_range: TimeRange, grain: Grain | None) -> _Values:
        previous = previous_period(time_range)
        total = await self._churn_counts(time_range.start, time_range.end, previous.start)
        buckets: dict[CellKey, Fraction] = {}
        if grain is not None:
            for start in bucket_axis(time_range, grain, self.tz).starts:
                end = min(next_bucket(start, grain, self.tz), time_range.end)
                before = bucket_floor(start - (end - start) / 2, grain, self.tz)
                buckets[(int(start.timestamp()), "")] = await self._churn_counts(
                    max(start, time_range.start), end, before
                )
        return _Values(buckets, {"": total}, False)

    async def _churn_counts(self, start: datetime, end: datetime, previous_start: datetime) -> Fraction:
        """(churned, base) from the kept customer days when they cover the bounds, else from the orders."""
        if self._customer_days_cover(start, end, previous_start):
            return await churn_from_days(self.session, start=start, end=end, previous_start=previous_start)
        self.used_raw = True
        return await churn_counts(self.session, start=start, end=end, previous_start=previous_start)


def _sum_by_value(buckets: dict[CellKey, Fraction]) -> dict[str, Fraction]:
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for (_, value), (numerator, denominator) in buckets.items():
        totals[value][0] += numerator
        totals[value][1] += denominator
    return {value: (f[0], f[1]) for value, f in totals.items()}


def resolve_range(period: PeriodSpec | TimeRange, now: datetime, business_tz: str) -> TimeRange:
    return period if isinstance(period, TimeRange) else resolve_period(period, now, business_tz)


def comparison_range_for(
    period: PeriodSpec | TimeRange, time_range: TimeRange, comparison: Comparison | None
) -> TimeRange | None:
    """The range `time_range` is compared with; a named period ("this month") compares by the calendar."""
    if comparison is None:
        return None
    return comparison_range(period if isinstance(period, PeriodSpec) else None, time_range, comparison)


async def run_query(
    database: Database, query: MetricQuery, *, now: datetime, business_tz: str, prefer_rollups: bool = True
) -> QueryResult:
    """Answer `query`: one series per metric and dimension value, totals, and comparison totals.

    prefer_rollups=False reads the raw facts even where rollups could answer (checks and benchmarks).
    """
    metrics = validate_query(query)
    time_range = resolve_range(query.period, now, business_tz)
    tz = time_range.timezone
    compared = comparison_range_for(query.period, time_range, query.comparison)
    spec = query.period if isinstance(query.period, PeriodSpec) else None
    basis = comparison_basis(spec, time_range, query.comparison) if query.comparison else None
    grain = query.grain
    axis = bucket_axis(time_range, grain, tz) if grain is not None else BucketAxis((), ())
    if len(axis.starts) > MAX_BUCKETS:
        raise ValueError(
            f"{len(axis.starts)} {grain} buckets is too many; pick a coarser grain or a shorter period"
        )
    dimensions = tuple(query.dimensions)
    filters = tuple(FactFilter(f.dimension, f.operator, f.values) for f in query.filters)

    series: list[SeriesResult] = []
    async with database.analytics_sessions() as session:
        watermark = await read_watermark(session) if prefer_rollups else None
        answerer = _Answerer(session, database.dialect, watermark, tz, dimensions, filters, now)
        for metric in metrics:
            current = await answerer.values(metric, time_range, grain)
            previous = await answerer.values(metric, compared, None) if compared else None
            earlier: tuple[_Values, BucketAxis] | None = None
            if compared is not None and grain is not None:
                # The compared period bucket by bucket, drawn beside this one ("vs the month before").
                earlier = (await answerer.values(metric, compared, grain), bucket_axis(compared, grain, tz))
            series += _series_of(metric, current, previous, axis, bool(dimensions), earlier)

    from_rollup = not answerer.used_raw and watermark is not None
    return QueryResult(
        metrics=metrics,
        range=time_range,
        comparison_range=compared,
        grain=grain,
        dimensions=dimensions,
        series=tuple(series),
        data_as_of=watermark.as_of if from_rollup and watermark else datetime.now(UTC),
        source="rollup" if from_rollup else "raw",
        comparison_basis=basis,
    )


def _series_of(
    metric: Metric,
    current: _Values,
    previous: _Values | None,
    axis: BucketAxis,
    split: bool,
    earlier: tuple[_Values, BucketAxis] | None = None,
) -> list[SeriesResult]:
    values = set(current.totals) | {v for _, v in current.buckets}
    if previous is not None:
        # A value seen only in the compared range (a channel that stopped selling) is a change too.
        values |= set(previous.totals)
    if not split:
        values = {""}
    empty: Fraction = (0.0, 0.0)

    def total_of(value: str) -> float | None:
        return metric_value(metric, *current.totals.get(value, empty))

    ordered = sorted(values, key=lambda v: (-(total_of(v) or 0.0), v))
    # Figures per value as {epoch second: figure}, so each point is one dict lookup.
    figures_by_value: dict[str, dict[int, float | None]] = defaultdict(dict)
    for (second, value), (numerator, denominator) in current.buckets.items():
        figures_by_value[value][second] = metric_value(metric, numerator, denominator)
    no_cell = metric_value(metric, *empty)
    earlier_by_value: dict[str, dict[int, float | None]] = defaultdict(dict)
    if earlier is not None:
        for (second, value), (numerator, denominator) in earlier[0].buckets.items():
            earlier_by_value[value][second] = metric_value(metric, numerator, denominator)
    result = []
    for value in ordered:
        figures = figures_by_value.get(value, {})
        points = tuple(zip(axis.starts, [figures.get(s, no_cell) for s in axis.seconds], strict=True))
        comparison = metric_value(metric, *previous.totals.get(value, empty)) if previous else None
        parts = tuple(value.split(VALUE_JOINER)) if split else ()
        shown = SHOWN_JOINER.join(parts)
        name = f"{metric.label} · {shown}" if split else metric.label
        basis = current.totals.get(value, empty)[1] if metric.aggregation in ("ratio", "average") else None
        before = earlier_by_value.get(value, {})
        result.append(
            SeriesResult(
                metric.name,
                shown if split else None,
                name,
                points,
                total_of(value),
                comparison,
                parts,
                basis,
                tuple(
                    zip(earlier[1].starts, [before.get(s, no_cell) for s in earlier[1].seconds], strict=True)
                )
                if earlier is not None
                else (),
            )
        )
    return result
