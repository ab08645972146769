"""The rollup SQL: computing analytics_data rows from facts, writing them, reading them back, and the watermark.

Rows are (metric, grain, bucket_start, dimension, dimension_value, numerator, denominator);
dimension '' holds the metric's total. The watermark (which grains, timezone and metrics are
rolled up, and up to when) lives in performance_metrics under ROLLUP_WATERMARK.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast, get_args

from sqlalchemy import Table, delete, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.analytics.bucketing import BucketGrain
from storage.analytics.facts import METRIC_MEASURES, Measure
from storage.analytics.queries import FactFilter, measure_values
from storage.models import AnalyticsData, PerformanceMetric
from storage.models.base import UtcDateTime

ROLLUP_WATERMARK = "analytics.rollup_watermark"
GRAINS: tuple[BucketGrain, ...] = get_args(BucketGrain)
#: Rows per executemany call, so a rebuild never holds one giant parameter list.
INSERT_BATCH = 5000


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

    def covers(self, metric: str, grain: str, tz: str) -> bool:
        return tz == self.timezone and grain in self.grains and metric in self.metrics


def rollup_dimensions(metric: str, dimensions: Iterable[str]) -> tuple[str, ...]:
    """'' (the total) followed by every dimension the metric can be split by."""
    return ("", *dimensions)


async def compute_rollup_rows(
    session: AsyncSession,
    dialect: str,
    metric_dimensions: dict[str, tuple[str, ...]],
    *,
    grain: BucketGrain,
    tz: str,
    start: datetime,
    end: datetime,
) -> list[RollupRow]:
    """Rollup rows for every metric (with its dimensions) over the buckets in [start, end).

    Measures are grouped so each (source, dimension) is scanned once however many metrics use it.
    """
    wanted: dict[tuple[str, str], dict[str, Measure]] = defaultdict(dict)
    for metric, dimensions in metric_dimensions.items():
        for dimension in rollup_dimensions(metric, dimensions):
            for measure in METRIC_MEASURES[metric].measures:
                wanted[(measure.source, dimension)][measure.key] = measure

    computed: dict[tuple[str, str], dict[tuple[datetime | None, str], dict[str, float]]] = {}
    for (source, dimension), measures in wanted.items():
        computed[(source, dimension)] = await measure_values(
            session,
            dialect,
            list(measures.values()),
            start=start,
            end=end,
            grain=grain,
            tz=tz,
            dimension=dimension or None,
        )

    rows: list[RollupRow] = []
    for metric, dimensions in metric_dimensions.items():
        parts = METRIC_MEASURES[metric]
        for dimension in rollup_dimensions(metric, dimensions):
            numerators = computed[(parts.numerator.source, dimension)]
            denominators = computed[(parts.denominator.source, dimension)] if parts.denominator else {}
            for bucket_key in numerators.keys() | denominators.keys():
                bucket, value = bucket_key
                assert bucket is not None
                numerator = numerators.get(bucket_key, {}).get(parts.numerator.key, 0.0)
                denominator = (
                    denominators.get(bucket_key, {}).get(parts.denominator.key, 0.0)
                    if parts.denominator
                    else 0.0
                )
                if numerator == 0 and denominator == 0:
                    continue  # an absent row reads as zero; storing it only costs space
                rows.append(RollupRow(metric, grain, bucket, dimension, value, numerator, denominator))
    return rows


def _upsert_statement(dialect: str) -> Any:
    """One parameterised INSERT .. ON CONFLICT DO UPDATE, run executemany-style over the rows."""
    table = cast(Table, AnalyticsData.__table__)
    statement = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return statement.on_conflict_do_update(
        index_elements=["metric", "grain", "dimension", "bucket_start", "dimension_value"],
        set_={
            "numerator": statement.excluded.numerator,
            "denominator": statement.excluded.denominator,
            "updated_at": statement.excluded.updated_at,
        },
    )


async def write_rollup_rows(session: AsyncSession, dialect: str, rows: Sequence[RollupRow]) -> None:
    """Insert rows, replacing any row with the same key (ON CONFLICT DO UPDATE on both engines)."""
    now = datetime.now(UTC)
    statement = _upsert_statement(dialect)
    for offset in range(0, len(rows), INSERT_BATCH):
        batch = rows[offset : offset + INSERT_BATCH]
        await session.execute(
            statement,
            [
                {
                    "metric": r.metric,
                    "grain": r.grain,
                    "bucket_start": r.bucket_start,
                    "dimension": r.dimension,
                    "dimension_value": r.dimension_value[:128],
                    "numerator": r.numerator,
                    "denominator": r.denominator,
                    "updated_at": now,
                }
                for r in batch
            ],
        )


async def delete_rollup_rows(
    session: AsyncSession,
    *,
    grains: Sequence[str],
    metrics: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> None:
    """Remove the rows of these grains (and metrics, and buckets starting in [start, end))."""
    statement = delete(AnalyticsData).where(AnalyticsData.grain.in_(grains))
    if metrics is not None:
        statement = statement.where(AnalyticsData.metric.in_(metrics))
    if start is not None:
        statement = statement.where(AnalyticsData.bucket_start >= literal(start, UtcDateTime))
    if end is not None:
        statement = statement.where(AnalyticsData.bucket_start < literal(end, UtcDateTime))
    await session.execute(statement)


async def read_rollup(
    session: AsyncSession,
    *,
    metric: str,
    grain: str,
    dimension: str,
    start: datetime,
    end: datetime,
    value_filter: FactFilter | None = None,
) -> dict[tuple[datetime, str], tuple[float, float]]:
    """{(bucket start, dimension value): (numerator, denominator)} for buckets starting in [start, end)."""
    statement = select(
        AnalyticsData.bucket_start,
        AnalyticsData.dimension_value,
        AnalyticsData.numerator,
        AnalyticsData.denominator,
    ).where(
        AnalyticsData.metric == metric,
        AnalyticsData.grain == grain,
        AnalyticsData.dimension == dimension,
        AnalyticsData.bucket_start >= literal(start, UtcDateTime),
        AnalyticsData.bucket_start < literal(end, UtcDateTime),
    )
    if value_filter is not None:
        column = AnalyticsData.dimension_value
        values = value_filter.values
        statement = statement.where(
            {
                "eq": column == values[0],
                "ne": column != values[0],
                "in": column.in_(values),
                "not_in": column.not_in(values),
            }[value_filter.operator]
        )
    return {
        (row.bucket_start, row.dimension_value): (row.numerator, row.denominator)
        for row in await session.execute(statement)
    }


async def read_watermark(session: AsyncSession) -> RollupWatermark | None:
    row = await session.scalar(
        select(PerformanceMetric)
        .where(PerformanceMetric.name == ROLLUP_WATERMARK)
        .order_by(PerformanceMetric.recorded_at.desc(), PerformanceMetric.id.desc())
        .limit(1)
    )
    if row is None:
        return None
    labels = row.labels
    return RollupWatermark(
        as_of=row.recorded_at,
        timezone=str(labels.get("timezone", "UTC")),
        grains=tuple(g for g in GRAINS if g in labels.get("grains", ())),
        metrics=tuple(labels.get("metrics", ())),
    )


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
            },
            value=watermark.as_of.timestamp(),
            recorded_at=watermark.as_of,
        )
    )
    await session.flush()
