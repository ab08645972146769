"""Keeping the KPI rollups (analytics_data) in step with the facts: full rebuilds and incremental updates.

A rebuild recomputes every rolled-up metric for the chosen grains in the business timezone; an
incremental update recomputes only the buckets that changed facts fall into, so a batch of new
orders from today rewrites today's rows and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reports.metrics import REGISTRY
from reports.periods import Grain, bucket_floor, next_bucket, zone
from storage.analytics.facts import COUNTED_ORDER_STATUSES, METRIC_MEASURES, SOURCES
from storage.analytics.queries import source_time_span
from storage.analytics.rollup_store import (
    RollupWatermark,
    compute_rollup_rows,
    delete_rollup_rows,
    read_watermark,
    write_rollup_rows,
    write_watermark,
)
from storage.database import Database
from storage.models import (
    Appointment,
    ChatSession,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    Order,
    Refund,
    VideoConsultation,
)

DEFAULT_GRAINS: tuple[Grain, ...] = ("day",)


def rolled_up_metrics() -> dict[str, tuple[str, ...]]:
    """Every metric with measures (all but churn) and the dimensions it is rolled up by."""
    return {name: REGISTRY[name].dimensions for name in METRIC_MEASURES}


@dataclass(frozen=True)
class RollupReport:
    grains: tuple[str, ...]
    buckets: int
    rows: int
    as_of: datetime


@dataclass(frozen=True)
class TouchedFacts:
    """The fact times (by source: orders, messages, customers, ...) changed since the last watermark."""

    times: Mapping[str, tuple[datetime, ...]] = field(default_factory=dict)
    #: Later orders of customers with a touched order: whether they are "returning" may have changed.
    later_order_times: tuple[datetime, ...] = ()

    @classmethod
    async def from_ids(
        cls,
        database: Database,
        *,
        orders: Iterable[int] = (),
        refunds: Iterable[int] = (),
        messages: Iterable[int] = (),
        customers: Iterable[int] = (),
        appointments: Iterable[int] = (),
        video_consultations: Iterable[int] = (),
        chats: Iterable[int] = (),
        opt_outs: Iterable[int] = (),
    ) -> TouchedFacts:
        """Look up when each changed fact happened; a refund touches its order's bucket."""
        lookups: list[tuple[str, Any, Any, list[int]]] = [
            ("orders", Order.created_at, Order.id, list(orders)),
            ("messages", CustomerCommunication.created_at, CustomerCommunication.id, list(messages)),
            ("customers", Customer.created_at, Customer.id, list(customers)),
            ("appointments", Appointment.scheduled_at, Appointment.id, list(appointments)),
            (
                "video_consultations",
                VideoConsultation.scheduled_at,
                VideoConsultation.id,
                list(video_consultations),
            ),
            ("chats", ChatSession.started_at, ChatSession.id, list(chats)),
            ("opt_outs", ConsentRecord.recorded_at, ConsentRecord.id, list(opt_outs)),
        ]
        times: dict[str, set[datetime]] = {}
        async with database.read_sessions() as session:
            refund_ids = list(refunds)
            for chunk in _chunks(refund_ids):
                order_ids = await session.scalars(select(Refund.order_id).where(Refund.id.in_(chunk)))
                lookups[0][3].extend(order_ids)
            for source, time_column, id_column, ids in lookups:
                for chunk in _chunks(sorted(set(ids))):
                    found = await session.scalars(select(time_column).where(id_column.in_(chunk)))
                    times.setdefault(source, set()).update(found)
            later = await _later_order_times(session, lookups[0][3])
        return cls({source: tuple(sorted(values)) for source, values in times.items() if values}, later)


async def _later_order_times(session: AsyncSession, order_ids: list[int]) -> tuple[datetime, ...]:
    """Times of counted orders placed after a touched order by the same customer."""
    later: set[datetime] = set()
    for chunk in _chunks(sorted(set(order_ids))):
        touched = Order.__table__.alias("touched_order")
        statement = (
            select(Order.created_at)
            .join(touched, touched.c.customer_id == Order.customer_id)
            .where(
                touched.c.id.in_(chunk),
                Order.created_at > touched.c.created_at,
                Order.status.in_(COUNTED_ORDER_STATUSES),
            )
        )
        later.update(await session.scalars(statement))
    return tuple(sorted(later))


def _chunks(ids: Sequence[int], size: int = 5000) -> Iterable[Sequence[int]]:
    for offset in range(0, len(ids), size):
        yield ids[offset : offset + size]


async def rebuild_rollups(
    database: Database, *, grains: Sequence[Grain] = DEFAULT_GRAINS, business_tz: str
) -> RollupReport:
    """Recompute every rollup row of `grains` from the facts and stamp the watermark, in one transaction."""
    zone(business_tz)
    as_of = datetime.now(UTC)
    metrics = rolled_up_metrics()
    rows_written = 0
    buckets = 0
    async with database.sessions() as session:
        spans = [span for source in SOURCES if (span := await source_time_span(session, source))]
        await delete_rollup_rows(session, grains=list(grains))
        if spans:
            first = min(s[0] for s in spans)
            last = max(s[1] for s in spans)
            for grain in grains:
                start = bucket_floor(first, grain, business_tz)
                end = next_bucket(bucket_floor(last, grain, business_tz), grain, business_tz)
                rows = await compute_rollup_rows(
                    session, database.dialect, metrics, grain=grain, tz=business_tz, start=start, end=end
                )
                await write_rollup_rows(session, database.dialect, rows)
                rows_written += len(rows)
                buckets += len({r.bucket_start for r in rows})
        await write_watermark(session, RollupWatermark(as_of, business_tz, tuple(grains), tuple(metrics)))
        await session.commit()
    return RollupReport(tuple(grains), buckets, rows_written, as_of)


def touched_bucket_runs(times: Iterable[datetime], grain: Grain, tz: str) -> list[tuple[datetime, datetime]]:
    """The buckets containing `times`, merged into contiguous [start, end) runs."""
    starts = sorted({bucket_floor(t, grain, tz) for t in times})
    runs: list[tuple[datetime, datetime]] = []
    for start in starts:
        end = next_bucket(start, grain, tz)
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return runs


async def update_rollups_for(
    database: Database, touched: TouchedFacts, *, as_of: datetime | None = None
) -> RollupReport:
    """Recompute only the buckets the touched facts fall into, for the metrics reading those sources.

    Uses the grains and timezone of the last rebuild; without one there is nothing to update.
    A backdated order can make its customer's later orders "returning", so those buckets are redone too.
    """
    stamp = as_of or datetime.now(UTC)
    rows_written = 0
    buckets = 0
    async with database.sessions() as session:
        watermark = await read_watermark(session)
        if watermark is None:
            raise RuntimeError("no rollups yet: run rebuild_rollups before incremental updates")
        all_metrics = rolled_up_metrics()
        touched_sources = set(touched.times)
        affected = {
            name: dims
            for name, dims in all_metrics.items()
            if name in watermark.metrics
            and {m.source for m in METRIC_MEASURES[name].measures} & touched_sources
        }
        times = [t for source in touched_sources for t in touched.times[source]]
        passes = [(affected, times)]
        if "returning_customers" in affected and touched.later_order_times:
            passes.append(
                ({"returning_customers": affected["returning_customers"]}, list(touched.later_order_times))
            )
        for metrics, moments in passes:
            for grain in watermark.grains:
                for start, end in touched_bucket_runs(moments, grain, watermark.timezone):
                    rows = await compute_rollup_rows(
                        session,
                        database.dialect,
                        metrics,
                        grain=grain,
                        tz=watermark.timezone,
                        start=start,
                        end=end,
                    )
                    await delete_rollup_rows(
                        session, grains=[grain], metrics=list(metrics), start=start, end=end
                    )
                    await write_rollup_rows(session, database.dialect, rows)
                    rows_written += len(rows)
                    buckets += len({r.bucket_start for r in rows})
        await write_watermark(
            session, RollupWatermark(stamp, watermark.timezone, watermark.grains, watermark.metrics)
        )
        await session.commit()
    return RollupReport(watermark.grains, buckets, rows_written, stamp)
