"""The rollup SQL: computing analytics_data rows from facts, writing them, reading them back, and the watermark.

Rows are (metric, grain, bucket_start, dimension, dimension_value, numerator, denominator);
dimension '' holds the metric's total. The watermark (which grains, timezone and metrics are
rolled up, and up to when) lives in performance_metrics under ROLLUP_WATERMARK.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast, get_args

from sqlalchemy import Table, and_, column, delete, literal, or_, select, table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.analytics.bucketing import BucketGrain, EpochSeconds
from storage.analytics.facts import METRIC_MEASURES, Measure
from storage.analytics.queries import FactFilter, fact_cells
from storage.models import AnalyticsData, PerformanceMetric
from storage.models.base import UtcDateTime

ROLLUP_WATERMARK = "analytics.rollup_watermark"
GRAINS: tuple[BucketGrain, ...] = get_args(BucketGrain)
#: Rows per executemany call, so a rebuild never holds one giant parameter list.
INSERT_BATCH = 5000

#: PostgreSQL advisory lock held by whatever rewrites rollups (a rebuild, an update) and by the removal of a
#: month of messages, so that none counts a month half gone (any constant all sides agree on).
ROLLUPS_LOCK_KEY = 0x5B_0001


@dataclass(frozen=True)
class RollupRow:
    metric: str
    grain: BucketGrain
    bucket_start: datetime
    dimension: str
    dimension_value: str
    numerator: float
    denominator: float


@dataclass(frozen=True)
class RollupWatermark:
    """What the rollups hold and the time up to which they reflect the facts."""

    as_of: datetime
    timezone: str
    grains: tuple[BucketGrain, ...]
    metrics: tuple[str, ...]
    #: The dimensions rolled up per metric; None for rollups built before dimensions were recorded.
    dimensions: Mapping[str, tuple[str, ...]] | None = None
    #: Whether customer_activity_days holds every day of the facts (cut in `timezone`).
    customer_days: bool = False

    def covers(self, metric: str, grain: str, tz: str, dimension: str = "") -> bool:
        if tz != self.timezone or grain not in self.grains or metric not in self.metrics:
            return False
        if not dimension:
            return True
        return self.dimensions is not None and dimension in self.dimensions.get(metric, ())


def rollup_dimensions(metric: str, dimensions: Iterable[str]) -> tuple[str, ...]:
    """'' (the total) followed by every dimension the metric can be split by."""
    return ("", *dimensions)


async def compute_rollup_rows(
    session: AsyncSession,
    dialect: str,
    metric_dimensions: dict[str, tuple[str, ...]],
    *,
    grains: Sequence[BucketGrain],
    tz: str,
    ranges: Sequence[tuple[datetime, datetime]],
) -> list[RollupRow]:
    """Rollup rows for every metric (with its dimensions) and grain over the buckets in `ranges`.

    Each source is scanned once at day grain for all its dimensions; weeks, months and quarters
    are folded from those days. Only 'returning' measures (they depend on the bucket size) and
    hours (cut in UTC, so they do not nest in local days) are scanned per grain. The ranges must
    cover whole buckets of every grain asked for.
    """
    measures: dict[str, dict[str, Measure]] = defaultdict(dict)
    dimensions: dict[str, dict[str, None]] = defaultdict(dict)
    for metric, metric_dims in metric_dimensions.items():
        for measure in METRIC_MEASURES[metric].measures:
            measures[measure.source][measure.key] = measure
            dimensions[measure.source].update(dict.fromkeys(metric_dims))

    by_grain: dict[BucketGrain, dict[tuple[str, datetime, str], dict[str, float]]] = {g: {} for g in grains}
    for source, wanted in measures.items():
        dims = tuple(dimensions[source])
        scan = functools.partial(fact_cells, session, dialect, ranges=ranges, tz=tz, dimensions=dims)
        local_grains = [g for g in grains if g != "hour"]
        if local_grains:
            days = await scan(list(wanted.values()), grain="day")
            returning = [m for m in wanted.values() if m.aggregate == "returning"]
            for grain in local_grains:
                cells = days
                if grain != "day":
                    cells = days.coarsened(grain, tz)
                    if returning:
                        cells = cells.merge(await scan(returning, grain=grain))
                _add_values(by_grain[grain], source, cells.values())
        if "hour" in grains:
            _add_values(by_grain["hour"], source, (await scan(list(wanted.values()), grain="hour")).values())

    rows: list[RollupRow] = []
    for rolled_grain, values in by_grain.items():
        rows += _rows_of(metric_dimensions, rolled_grain, values)
    return rows


def _add_values(
    target: dict[tuple[str, datetime, str], dict[str, float]],
    source: str,
    values: dict[tuple[str, datetime, str], dict[str, float]],
) -> None:
    """Keyed by (source, ...) inside: two sources may both have a measure of the same cell."""
    for (dimension, bucket, value), measured in values.items():
        target.setdefault((f"{source}:{dimension}", bucket, value), {}).update(measured)


def _rows_of(
    metric_dimensions: dict[str, tuple[str, ...]],
    grain: BucketGrain,
    values: dict[tuple[str, datetime, str], dict[str, float]],
) -> list[RollupRow]:
    by_dimension: dict[str, list[tuple[datetime, str, dict[str, float]]]] = defaultdict(list)
    for (scope, bucket, value), measured in values.items():
        by_dimension[scope].append((bucket, value, measured))
    rows: list[RollupRow] = []
    for metric, metric_dims in metric_dimensions.items():
        parts = METRIC_MEASURES[metric]
        for dimension in rollup_dimensions(metric, metric_dims):
            cells: dict[tuple[datetime, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
            for position, measure in enumerate(parts.measures):
                for bucket, value, measured in by_dimension.get(f"{measure.source}:{dimension}", ()):
                    cells[(bucket, value)][position] = measured.get(measure.key, 0.0)
            for (bucket, value), (numerator, denominator) in cells.items():
                if numerator == 0 and denominator == 0:
                    continue  # an absent row reads as zero; storing it only costs space
                rows.append(RollupRow(metric, grain, bucket, dimension, value, numerator, denominator))
    return rows


#: analytics_data without column types, for writing: timestamps go in already in the driver's form,
#: so a rebuild's hundred thousand rows skip per-value bind processing (most of its write time).
_untyped_rollups = table(
    "analytics_data",
    *(
        column(name)
        for name in (
            "metric",
            "grain",
            "bucket_start",
            "dimension",
            "dimension_value",
            "numerator",
            "denominator",
            "updated_at",
        )
    ),
)


def _upsert_statement(dialect: str) -> Any:
    """One parameterised INSERT .. ON CONFLICT DO UPDATE, run executemany-style over the rows."""
    statement = (
        postgresql.insert(_untyped_rollups) if dialect == "postgresql" else sqlite.insert(_untyped_rollups)
    )
    return statement.on_conflict_do_update(
        index_elements=["metric", "grain", "dimension", "bucket_start", "dimension_value"],
        set_={
            "numerator": statement.excluded.numerator,
            "denominator": statement.excluded.denominator,
            "updated_at": statement.excluded.updated_at,
        },
    )


def _driver_timestamps(dialect: str) -> Callable[[datetime], Any]:
    """UTC timestamps as UtcDateTime stores them: naive text on SQLite, aware datetimes for asyncpg."""
    if dialect != "sqlite":
        return lambda moment: moment
    memo: dict[datetime, str] = {}

    def as_text(moment: datetime) -> str:
        text = memo.get(moment)
        if text is None:
            text = memo[moment] = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return text

    return as_text


async def write_rollup_rows(session: AsyncSession, dialect: str, rows: Sequence[RollupRow]) -> None:
    """Insert rows, replacing any row with the same key (ON CONFLICT DO UPDATE on both engines).

    Rows go in index order, so SQLite appends to the unique index instead of splitting pages.
    """
    stamp = _driver_timestamps(dialect)
    now = stamp(datetime.now(UTC))
    statement = _upsert_statement(dialect)
    ordered = sorted(rows, key=lambda r: (r.metric, r.grain, r.dimension, r.bucket_start, r.dimension_value))
    for offset in range(0, len(ordered), INSERT_BATCH):
        await session.execute(
            statement,
            [
                {
                    "metric": r.metric,
                    "grain": r.grain,
                    "bucket_start": stamp(r.bucket_start),
                    "dimension": r.dimension,
                    "dimension_value": r.dimension_value[:128],
                    "numerator": r.numerator,
                    "denominator": r.denominator,
                    "updated_at": now,
                }
                for r in ordered[offset : offset + INSERT_BATCH]
            ],
        )


async def delete_rollup_rows(
    session: AsyncSession,
    *,
    grains: Sequence[str],
    metrics: Sequence[str] | None = None,
    ranges: Sequence[tuple[datetime, datetime]] = (),
    keeping: tuple[Sequence[str], datetime] | None = None,
) -> None:
    """Remove the rows of these grains (and metrics, and buckets starting in any of `ranges`); `keeping`
    (metrics, before) leaves those metrics' buckets that start before `before`."""
    statement = delete(AnalyticsData).where(AnalyticsData.grain.in_(grains))
    if keeping is not None and keeping[0]:
        kept_metrics, before = keeping
        statement = statement.where(
            ~and_(
                AnalyticsData.metric.in_(list(kept_metrics)),
                AnalyticsData.bucket_start < literal(before, UtcDateTime),
            )
        )
    if metrics is not None:
        statement = statement.where(AnalyticsData.metric.in_(metrics))
    if ranges:
        statement = statement.where(
            or_(
                *(
                    and_(
                        AnalyticsData.bucket_start >= literal(start, UtcDateTime),
                        AnalyticsData.bucket_start < literal(end, UtcDateTime),
                    )
                    for start, end in ranges
                )
            )
        )
    await session.execute(statement)


#: Rollup cells read back: {(bucket start as epoch seconds, dimension value): (numerator, denominator)}.
RollupCells = dict[tuple[int, str], tuple[float, float]]

_rollups = cast(Table, AnalyticsData.__table__)
_watermarks = cast(Table, PerformanceMetric.__table__)


async def read_rollup(
    session: AsyncSession,
    *,
    metric: str,
    grain: str,
    dimension: str,
    start: datetime,
    end: datetime,
    value_filter: FactFilter | None = None,
) -> RollupCells:
    """The cells of buckets starting in [start, end): one Core select over the rollup's unique index.

    Buckets come back as epoch seconds computed in SQL: parsing and hashing a year of aware
    datetimes per dimension value would cost more than the query itself.
    """
    columns = _rollups.c
    statement = select(
        EpochSeconds(columns.bucket_start), columns.dimension_value, columns.numerator, columns.denominator
    ).where(
        columns.metric == metric,
        columns.grain == grain,
        columns.dimension == dimension,
        columns.bucket_start >= literal(start, UtcDateTime),
        columns.bucket_start < literal(end, UtcDateTime),
    )
    if value_filter is not None:
        column = columns.dimension_value
        values = value_filter.values
        statement = statement.where(
            {
                "eq": column == values[0],
                "ne": column != values[0],
                "in": column.in_(values),
                "not_in": column.not_in(values),
            }[value_filter.operator]
        )
    rows = (await session.execute(statement)).all()
    return {(second, value): (numerator, denominator) for second, value, numerator, denominator in rows}


async def read_watermark(session: AsyncSession) -> RollupWatermark | None:
    columns = _watermarks.c
    row = (
        await session.execute(
            select(columns.labels, columns.recorded_at)
            .where(columns.name == ROLLUP_WATERMARK)
            .order_by(columns.recorded_at.desc(), columns.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    labels, recorded_at = row
    return RollupWatermark(
        as_of=recorded_at,
        timezone=str(labels.get("timezone", "UTC")),
        grains=tuple(g for g in GRAINS if g in labels.get("grains", ())),
        metrics=tuple(labels.get("metrics", ())),
        dimensions=_dimensions(labels.get("dimensions")),
        customer_days=labels.get("customer_days") is True,
    )


def _dimensions(stored: object) -> dict[str, tuple[str, ...]] | None:
    if not isinstance(stored, dict):
        return None
    return {
        str(metric): tuple(str(d) for d in dims) for metric, dims in stored.items() if isinstance(dims, list)
    }


async def write_watermark(session: AsyncSession, watermark: RollupWatermark) -> None:
    """Replace the watermark row; value holds the as-of time as epoch seconds for plain dashboards."""
    await session.execute(delete(PerformanceMetric).where(PerformanceMetric.name == ROLLUP_WATERMARK))
    session.add(
        PerformanceMetric(
            name=ROLLUP_WATERMARK,
            labels={
                "timezone": watermark.timezone,
                "grains": list(watermark.grains),
                "metrics": list(watermark.metrics),
                **(
                    {"dimensions": {m: list(d) for m, d in watermark.dimensions.items()}}
                    if watermark.dimensions is not None
                    else {}
                ),
                "customer_days": watermark.customer_days,
            },
            value=watermark.as_of.timestamp(),
            recorded_at=watermark.as_of,
        )
    )
    await session.flush()
