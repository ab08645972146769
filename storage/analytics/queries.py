"""KPI fact queries: measures over a fact table, per local time bucket and dimension value.

One query per source computes every requested measure in a single scan (conditional aggregates);
values arrive as bound parameters, dimension and metric names only as keys of fixed tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, case, distinct, exists, func, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage.analytics.bucketing import BucketGrain, KeyBuilder, key_to_utc, local_key_builder
from storage.analytics.facts import COUNTED_ORDER_STATUSES, SOURCES, FactSource, Measure
from storage.models import Order
from storage.models.base import UtcDateTime

Operator = Literal["eq", "ne", "in", "not_in"]
BucketKey = tuple[datetime | None, str]


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
    dimension: str | None = None,
    filters: Sequence[FactFilter] = (),
) -> dict[BucketKey, dict[str, float]]:
    """{(bucket start in UTC or None for the whole range, dimension value or ''): {measure key: value}}.

    All measures must come from one source; facts are those with start <= time < end.
    """
    unique = list({m.key: m for m in measures}.values())
    sources = {m.source for m in unique}
    if len(sources) != 1:
        raise ValueError(f"measures of one query must share a source, got {sorted(sources)}")
    source = SOURCES[sources.pop()]
    key = local_key_builder(dialect, grain, tz, start, end) if grain is not None else None

    dimension_names = tuple(
        dict.fromkeys([*([dimension] if dimension else []), *(f.dimension for f in filters)])
    )
    joined: Any = source.table
    for join in source.joins_for(dimension_names):
        joined = joined.outerjoin(join.target, join.on)

    time_column = source.time_column
    inner_columns: list[ColumnElement[Any]] = [
        (key(time_column) if key is not None else literal(None)).label("bucket"),
        (source.dimension(dimension) if dimension else literal("")).label("dimension_value"),
    ]
    inner_columns += [_measure_input(m, key, start).label(f"m{i}") for i, m in enumerate(unique)]
    conditions = [time_column >= literal(start, UtcDateTime), time_column < literal(end, UtcDateTime)]
    if source.condition is not None:
        conditions.append(source.condition)
    conditions += [f.expression(source) for f in filters]
    facts = select(*inner_columns).select_from(joined).where(and_(true(), *conditions)).subquery("facts")

    outer = select(
        facts.c.bucket,
        facts.c.dimension_value,
        *[_aggregate(m, facts.c[f"m{i}"]) for i, m in enumerate(unique)],
    ).group_by(facts.c.bucket, facts.c.dimension_value)

    values: dict[BucketKey, dict[str, float]] = {}
    for row in await session.execute(outer):
        bucket = key_to_utc(row[0], grain, tz) if grain is not None and row[0] is not None else None
        values[(bucket, str(row[1]))] = {m.key: float(row[i + 2] or 0) for i, m in enumerate(unique)}
    return values


async def churn_counts(
    session: AsyncSession, *, start: datetime, end: datetime, previous_start: datetime
) -> tuple[float, float]:
    """(customers who ordered in [previous_start, start) but not in [start, end), those who ordered before)."""
    later = Order.__table__.alias("later_order")
    ordered_again = exists(
        select(literal(1)).where(
            later.c.customer_id == Order.customer_id,
            later.c.status.in_(COUNTED_ORDER_STATUSES),
            later.c.created_at >= literal(start, UtcDateTime),
            later.c.created_at < literal(end, UtcDateTime),
        )
    )
    statement = select(
        func.count(distinct(case((~ordered_again, Order.customer_id), else_=None))),
        func.count(distinct(Order.customer_id)),
    ).where(
        Order.status.in_(COUNTED_ORDER_STATUSES),
        Order.created_at >= literal(previous_start, UtcDateTime),
        Order.created_at < literal(start, UtcDateTime),
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
