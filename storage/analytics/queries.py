"""KPI fact queries: measures over a fact table, per local time bucket and dimension value.

One query per source computes every requested measure in a single scan (conditional aggregates);
values arrive as bound parameters, dimension and metric names only as keys of fixed tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, distinct, exists, func, literal, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage.analytics.bucketing import BucketGrain, KeyBuilder, key_to_utc, local_key_builder
from storage.analytics.facts import COUNTED_ORDER_STATUSES, SOURCES, FactSource, Measure
from storage.models import Order
from storage.models.base import UtcDateTime

Operator = Literal["eq", "ne", "in", "not_in"]
BucketKey = tuple[datetime | None, str]
#: Between the values of a two-way split in a BucketKey (a character no stored name contains).
VALUE_JOINER = "\x1f"


@dataclass(frozen=True)
class FactFilter:
    """Keep facts whose `dimension` value matches; values are compared as bound parameters."""

    dimension: str
    operator: Operator
    values: tuple[str, ...]

    def expression(self, source: FactSource) -> ColumnElement[bool]:
        column = source.dimension(self.dimension)
        if self.operator == "eq":
            return column == self.values[0]
        if self.operator == "ne":
            return column != self.values[0]
        if self.operator == "in":
            return column.in_(self.values)
        return column.not_in(self.values)


def _returning_condition(key: KeyBuilder | None, start: datetime) -> ColumnElement[bool]:
    """The order's customer had a counted order in an earlier bucket (or before the range, for totals)."""
    earlier = Order.__table__.alias("earlier_order")
    conditions = [
        earlier.c.customer_id == Order.customer_id,
        earlier.c.status.in_(COUNTED_ORDER_STATUSES),
    ]
    if key is None:
        conditions.append(earlier.c.created_at < literal(start, UtcDateTime))
    else:
        conditions += [
            earlier.c.created_at < Order.created_at,
            key(earlier.c.created_at) != key(Order.created_at),
        ]
    return exists(select(literal(1)).where(*conditions))


def _measure_input(measure: Measure, key: KeyBuilder | None, start: datetime) -> ColumnElement[Any]:
    """The per-row value the outer query aggregates (NULL where the row does not count)."""
    condition = measure.condition
    if measure.aggregate == "returning":
        returning = _returning_condition(key, start)
        condition = returning if condition is None else and_(condition, returning)
    value: ColumnElement[Any] = measure.value.expression if measure.value is not None else literal(1)
    if condition is None:
        return value
    return case((condition, value), else_=None)


def _aggregate(measure: Measure, column: ColumnElement[Any]) -> ColumnElement[Any]:
    if measure.aggregate == "sum":
        return func.coalesce(func.sum(column), 0)
    if measure.aggregate == "count":
        return func.count(column)
    return func.count(distinct(column))


async def measure_values(
    session: AsyncSession,
    dialect: str,
    measures: Sequence[Measure],
    *,
    start: datetime,
    end: datetime,
    grain: BucketGrain | None,
    tz: str,
    dimensions: Sequence[str] = (),
    filters: Sequence[FactFilter] = (),
) -> dict[BucketKey, dict[str, float]]:
    """{(bucket start in UTC or None for the whole range, dimension value or ''): {measure key: value}}.

    Split by two dimensions, the value is both values joined by VALUE_JOINER (first dimension first).
    All measures must come from one source; facts are those with start <= time < end.
    """
    unique = list({m.key: m for m in measures}.values())
    sources = {m.source for m in unique}
    if len(sources) != 1:
        raise ValueError(f"measures of one query must share a source, got {sorted(sources)}")
    source = SOURCES[sources.pop()]
    key = local_key_builder(dialect, grain, tz, start, end) if grain is not None else None

    dimension_names = tuple(dict.fromkeys([*dimensions, *(f.dimension for f in filters)]))
    joined: Any = source.table
    for join in source.joins_for(dimension_names):
        joined = joined.outerjoin(join.target, join.on)

    time_column = source.time_column
    inner_columns: list[ColumnElement[Any]] = [
        (key(time_column) if key is not None else literal(None)).label("bucket"),
    ]
    inner_columns += [source.dimension(d).label(f"v{i}") for i, d in enumerate(dimensions)]
    value_columns = [f"v{i}" for i in range(len(dimensions))]
    inner_columns += [_measure_input(m, key, start).label(f"m{i}") for i, m in enumerate(unique)]
    conditions = [time_column >= literal(start, UtcDateTime), time_column < literal(end, UtcDateTime)]
    if source.condition is not None:
        conditions.append(source.condition)
    conditions += [f.expression(source) for f in filters]
    facts = select(*inner_columns).select_from(joined).where(and_(true(), *conditions)).subquery("facts")

    split = [facts.c[name] for name in value_columns]
    outer = select(
        facts.c.bucket,
        *split,
        *[_aggregate(m, facts.c[f"m{i}"]) for i, m in enumerate(unique)],
    ).group_by(facts.c.bucket, *split)

    width = 1 + len(split)
    values: dict[BucketKey, dict[str, float]] = {}
    for row in await session.execute(outer):
        bucket = key_to_utc(row[0], grain, tz) if grain is not None and row[0] is not None else None
        value = VALUE_JOINER.join(str(part) for part in row[1:width])
        values[(bucket, value)] = {m.key: float(row[width + i] or 0) for i, m in enumerate(unique)}
    return values


#: A rollup cell: (dimension or '' for the total, bucket start in UTC, dimension value or '').
CellKey = tuple[str, datetime, str]
#: Per cell and measure position: a running sum/count, or the distinct values seen (distinct counts).
Accumulators = list[Any]


@dataclass
class FactCells:
    """Measures per (dimension, bucket, value) from one scan; distinct counts keep their value sets."""

    measures: tuple[Measure, ...]
    cells: dict[CellKey, Accumulators]

    def values(self) -> dict[CellKey, dict[str, float]]:
        # Partial sums added in Python drift in the last bits (115.65999999999998 for 115.66); money,
        # micros and seconds need far fewer than nine decimals, so rounding there removes the drift.
        return {
            cell: {
                m.key: float(len(a)) if isinstance(a, set) else round(a, 9)
                for m, a in zip(self.measures, accumulators, strict=True)
            }
            for cell, accumulators in self.cells.items()
        }

    def coarsened(self, grain: BucketGrain, tz: str) -> FactCells:
        """These (day) cells merged into `grain` buckets, without the 'returning' measures.

        Local days tile local weeks, months and quarters, so sums, counts and distinct sets merge
        exactly; whether a customer is returning depends on the bucket size and needs its own scan.
        """
        zone = ZoneInfo(tz)
        coarse_start: dict[datetime, datetime] = {}
        kept = [i for i, m in enumerate(self.measures) if m.aggregate != "returning"]
        merged: dict[CellKey, Accumulators] = {}
        for (dimension, bucket, value), accumulators in self.cells.items():
            start = coarse_start.get(bucket)
            if start is None:
                start = coarse_start[bucket] = _coarse_bucket(bucket, grain, zone)
            target = merged.get((dimension, start, value))
            if target is None:
                merged[(dimension, start, value)] = [
                    set(accumulators[i]) if isinstance(accumulators[i], set) else accumulators[i]
                    for i in kept
                ]
                continue
            for slot, position in enumerate(kept):
                if isinstance(target[slot], set):
                    target[slot] |= accumulators[position]
                else:
                    target[slot] += accumulators[position]
        return FactCells(tuple(self.measures[i] for i in kept), merged)

    def merge(self, other: FactCells) -> FactCells:
        """These cells side by side with `other`'s (other measures of the same source); absent cells are 0."""
        blank_self: Accumulators = [0.0] * len(self.measures)
        blank_other: Accumulators = [0.0] * len(other.measures)
        cells = {
            cell: [*self.cells.get(cell, blank_self), *other.cells.get(cell, blank_other)]
            for cell in self.cells.keys() | other.cells.keys()
        }
        return FactCells((*self.measures, *other.measures), cells)


def _coarse_bucket(day_start: datetime, grain: BucketGrain, zone: ZoneInfo) -> datetime:
    day = day_start.astimezone(zone).date()
    if grain == "week":
        first = day - timedelta(days=day.weekday())
    elif grain == "month":
        first = day.replace(day=1)
    elif grain == "quarter":
        first = day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    else:
        first = day
    return datetime.combine(first, time(), zone).astimezone(UTC)


async def fact_cells(
    session: AsyncSession,
    dialect: str,
    measures: Sequence[Measure],
    *,
    ranges: Sequence[tuple[datetime, datetime]],
    grain: BucketGrain,
    tz: str,
    dimensions: Sequence[str],
) -> FactCells:
    """Every measure for the total and for each dimension, over facts in any of `ranges`, in ONE scan.

    The query groups by bucket and all dimension columns at once (and by the counted value of
    distinct measures); Python then folds the groups into per-dimension cells. One pass over the
    fact table replaces a scan per dimension.
    """
    unique = tuple({m.key: m for m in measures}.values())
    sources = {m.source for m in unique}
    if len(sources) != 1:
        raise ValueError(f"measures of one scan must share a source, got {sorted(sources)}")
    source = SOURCES[sources.pop()]
    start, end = min(r[0] for r in ranges), max(r[1] for r in ranges)
    key = local_key_builder(dialect, grain, tz, start, end)

    joined: Any = source.table
    for join in source.joins_for(tuple(dimensions)):
        joined = joined.outerjoin(join.target, join.on)
    time_column = source.time_column
    inner_columns: list[ColumnElement[Any]] = [key(time_column).label("bucket")]
    inner_columns += [source.dimension(d).label(f"d{i}") for i, d in enumerate(dimensions)]
    inner_columns += [_measure_input(m, key, start).label(f"m{i}") for i, m in enumerate(unique)]
    conditions = [time_column >= literal(start, UtcDateTime), time_column < literal(end, UtcDateTime)]
    if len(ranges) > 1:
        conditions.append(
            or_(
                *(
                    and_(time_column >= literal(low, UtcDateTime), time_column < literal(high, UtcDateTime))
                    for low, high in ranges
                )
            )
        )
    if source.condition is not None:
        conditions.append(source.condition)
    facts = select(*inner_columns).select_from(joined).where(*conditions).subquery("facts")

    distinct_positions = [i for i, m in enumerate(unique) if not m.additive]
    group_columns = [facts.c.bucket, *(facts.c[f"d{i}"] for i in range(len(dimensions)))]
    group_columns += [facts.c[f"m{i}"] for i in distinct_positions]
    outer = select(
        *group_columns,
        *(_aggregate(m, facts.c[f"m{i}"]) for i, m in enumerate(unique) if m.additive),
    ).group_by(*group_columns)

    width = 1 + len(dimensions)
    additive_positions = [i for i, m in enumerate(unique) if m.additive]
    cells: dict[CellKey, Accumulators] = {}
    bucket_of: dict[Any, datetime] = {}
    names = ("", *dimensions)
    for row in (await session.execute(outer)).all():
        bucket = bucket_of.get(row[0])
        if bucket is None:
            bucket = bucket_of[row[0]] = key_to_utc(row[0], grain, tz)
        distinct_values = row[width : width + len(distinct_positions)]
        sums = row[width + len(distinct_positions) :]
        for index, dimension in enumerate(names):
            cell = (dimension, bucket, str(row[index]) if index else "")
            accumulators = cells.get(cell)
            if accumulators is None:
                accumulators = cells[cell] = [set() if not m.additive else 0.0 for m in unique]
            for position, value in zip(additive_positions, sums, strict=True):
                accumulators[position] += float(value or 0)
            for position, value in zip(distinct_positions, distinct_values, strict=True):
                if value is not None:
                    accumulators[position].add(value)
    return FactCells(unique, cells)


async def churn_counts(
    session: AsyncSession, *, start: datetime, end: datetime, previous_start: datetime
) -> tuple[float, float]:
    """(customers who ordered in [previous_start, start) but not in [start, end), those who ordered before).

    One pass over both periods' orders, grouped by customer (read from ix_orders_created_status alone),
    rather than asking for each earlier order whether its customer came back."""
    before = func.max(case((Order.created_at < literal(start, UtcDateTime), 1), else_=0)).label("before")
    again = func.max(case((Order.created_at >= literal(start, UtcDateTime), 1), else_=0)).label("again")
    per_customer = (
        select(before, again)
        .where(
            Order.status.in_(COUNTED_ORDER_STATUSES),
            Order.created_at >= literal(previous_start, UtcDateTime),
            Order.created_at < literal(end, UtcDateTime),
        )
        .group_by(Order.customer_id)
        .subquery()
    )
    statement = select(
        func.coalesce(
            func.sum(case(((per_customer.c.before == 1) & (per_customer.c.again == 0), 1), else_=0)), 0
        ),
        func.coalesce(func.sum(per_customer.c.before), 0),
    )
    churned, base = (await session.execute(statement)).one()
    return float(churned or 0), float(base or 0)


async def source_time_span(session: AsyncSession, source_name: str) -> tuple[datetime, datetime] | None:
    """The earliest and latest fact time of a source, or None when it has no facts."""
    source = SOURCES[source_name]
    first, last = (
        await session.execute(select(func.min(source.time_column), func.max(source.time_column)))
    ).one()
    if first is None or last is None:
        return None
    return _aware(first), _aware(last)


def _aware(value: Any) -> datetime:
    """min()/max() lose the column type on SQLite, so parse and mark UTC by hand."""
    from datetime import UTC

    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
