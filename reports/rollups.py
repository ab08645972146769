"""Keeping the KPI rollups (analytics_data) in step with the facts: full rebuilds and incremental updates.

A rebuild recomputes every rolled-up metric for the chosen grains in the business timezone; an
incremental update recomputes only the buckets that changed facts fall into, so a batch of new
orders from today rewrites today's rows and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from reports.metrics import REGISTRY
from reports.periods import GRAINS, Grain, bucket_floor, next_bucket, zone
from storage.analytics.customer_days import clear_customer_days, recount_customer_days
from storage.analytics.facts import (
    COUNTED_ORDER_STATUSES,
    METRIC_MEASURES,
    SETTLED_AFTER,
    SOURCES,
    UNSETTLED_SOURCES,
)
from storage.analytics.queries import source_time_span
from storage.analytics.rollup_store import (
    ROLLUPS_LOCK_KEY,
    RollupRow,
    RollupWatermark,
    compute_rollup_rows,
    delete_rollup_rows,
    read_watermark,
    write_rollup_rows,
    write_watermark,
)
from storage.database import Database
from storage.models import (
    AnalyticsData,
    Appointment,
    ChatSession,
    ChatSlaEvent,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    MessageStatusEvent,
    Order,
    Refund,
    VideoConsultation,
)
from storage.models.base import UtcDateTime
from storage.partitions import messages_gone_before

log = logging.getLogger(__name__)

DEFAULT_GRAINS: tuple[Grain, ...] = ("day",)
#: The grains `switchboard rollups rebuild` and the background job keep: what dashboards and bots ask for.
STANDARD_GRAINS: tuple[Grain, ...] = ("day", "week", "month")


def rolled_up_metrics() -> dict[str, tuple[str, ...]]:
    """Every metric with measures (all but churn) and the dimensions it is rolled up by."""
    return {name: REGISTRY[name].dimensions for name in METRIC_MEASURES}


def counted_from_messages(metrics: Iterable[str]) -> list[str]:
    """Those of `metrics` counted from the messages themselves, which the retention setting removes once
    old (SWITCHBOARD_MESSAGE_RETENTION_MONTHS): their buckets from before that are kept as they were counted,
    never counted again from what is left."""
    return sorted(
        name
        for name in metrics
        if any(m.source in ("messages", "inbound_messages") for m in METRIC_MEASURES[name].measures)
    )


def _from_first_bucket_after(
    runs: Sequence[tuple[datetime, datetime]], before: datetime, grain: Grain, tz: str
) -> list[tuple[datetime, datetime]]:
    """`runs` (whole buckets) without the buckets that start before `before`."""
    trimmed = []
    for start, end in runs:
        while start < before and start < end:
            start = next_bucket(start, grain, tz)
        if start < end:
            trimmed.append((start, end))
    return trimmed


@dataclass(frozen=True)
class RollupReport:
    grains: tuple[str, ...]
    buckets: int
    rows: int
    as_of: datetime


@dataclass(frozen=True)
class TouchedFacts:
    """Which facts changed since the last watermark: their times, or whole time ranges, by source.

    Sources are orders, messages, inbound_messages, customers, appointments, video_consultations, chats,
    opt_outs.
    A writer that knows when its facts happened passes `ranges` and no lookup is needed.
    """

    times: Mapping[str, tuple[datetime, ...]] = field(default_factory=dict)
    #: Later orders of customers with a touched order: whether they are "returning" may have changed.
    later_order_times: tuple[datetime, ...] = ()
    ranges: Mapping[str, tuple[tuple[datetime, datetime], ...]] = field(default_factory=dict)

    @property
    def sources(self) -> set[str]:
        return {s for s, t in self.times.items() if t} | {s for s, r in self.ranges.items() if r}

    @classmethod
    async def from_ranges(
        cls, database: Database, ranges: Mapping[str, Sequence[tuple[datetime, datetime]]]
    ) -> TouchedFacts:
        """Facts changed in these [start, end) ranges; one query finds the later orders they affect."""
        spans = {source: tuple(spans) for source, spans in ranges.items() if spans}
        later: tuple[datetime, ...] = ()
        if spans.get("orders"):
            async with database.read_sessions() as session:
                later = await _later_order_times_in(session, spans["orders"])
        return cls({}, later, spans)

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
            .distinct()
        )
        later.update(await session.scalars(statement))
    return tuple(sorted(later))


async def _later_order_times_in(
    session: AsyncSession, ranges: Sequence[tuple[datetime, datetime]]
) -> tuple[datetime, ...]:
    """Times of counted orders placed after an order in `ranges` by the same customer (one query).

    Orders inside the ranges are left out: their buckets are recomputed anyway.
    """
    touched = Order.__table__.alias("touched_order")

    def within(column: Any) -> Any:
        return or_(
            *(
                and_(column >= literal(low, UtcDateTime), column < literal(high, UtcDateTime))
                for low, high in ranges
            )
        )

    statement = (
        select(Order.created_at)
        .where(
            Order.status.in_(COUNTED_ORDER_STATUSES),
            Order.created_at > literal(min(low for low, _ in ranges), UtcDateTime),
            ~within(Order.created_at),
            exists(
                select(literal(1)).where(
                    touched.c.customer_id == Order.customer_id,
                    touched.c.created_at < Order.created_at,
                    within(touched.c.created_at),
                )
            ),
        )
        .distinct()
    )
    return tuple(sorted(await session.scalars(statement)))


def _chunks(ids: Sequence[int], size: int = 5000) -> Iterable[Sequence[int]]:
    for offset in range(0, len(ids), size):
        yield ids[offset : offset + size]


async def rebuild_rollups(
    database: Database, *, grains: Sequence[Grain] = DEFAULT_GRAINS, business_tz: str
) -> RollupReport:
    """Recompute every rollup row of `grains` from the facts and stamp the watermark, in one transaction."""
    report = await _rebuild(database, grains=grains, business_tz=business_tz, only_if_missing=False)
    assert report is not None
    return report


async def build_missing_rollups(database: Database, *, business_tz: str) -> RollupReport | None:
    """Build the rollups when there are none, or when they no longer fit (another timezone, new metrics).

    For a database seeded or restored without `switchboard rollups rebuild`: the background job calls
    this before every incremental update, so it needs no one to remember. None when nothing was missing.
    """
    async with database.read_sessions() as session:
        watermark = await read_watermark(session)
    if _fits(watermark, business_tz):
        return None
    # Grains an operator added (`rollups rebuild --grain quarter`) are kept along with the standard ones.
    kept = set(STANDARD_GRAINS) | set(watermark.grains if watermark is not None else ())
    grains = tuple(g for g in GRAINS if g in kept)
    return await _rebuild(database, grains=grains, business_tz=business_tz, only_if_missing=True)


def _fits(watermark: RollupWatermark | None, business_tz: str) -> bool:
    return (
        watermark is not None
        and watermark.timezone == business_tz
        and watermark.customer_days
        and set(rolled_up_metrics()) <= set(watermark.metrics)
        and watermark.dimensions is not None
        and all(
            set(dims) <= set(watermark.dimensions.get(metric, ()))
            for metric, dims in rolled_up_metrics().items()
        )
    )


async def _rebuild(
    database: Database, *, grains: Sequence[Grain], business_tz: str, only_if_missing: bool
) -> RollupReport | None:
    zone(business_tz)
    as_of = datetime.now(UTC)
    metrics = rolled_up_metrics()
    rows: list[RollupRow] = []
    async with database.sessions() as session:
        if database.dialect == "postgresql":
            # Several processes may find the rollups missing at once; one builds, the others then see it.
            await session.execute(select(func.pg_advisory_xact_lock(ROLLUPS_LOCK_KEY)))
        if only_if_missing and _fits(await read_watermark(session), business_tz):
            return None
        spans = [span for source in SOURCES if (span := await source_time_span(session, source))]
        # Buckets whose messages retention removed keep what was counted before; they are not counted again
        # (unless the business's timezone changed: its days are other buckets, and only what is left counts).
        gone_before = await messages_gone_before(session)
        before = await read_watermark(session)
        if gone_before is not None and before is not None and before.timezone != business_tz:
            log.warning(
                "rollups rebuilt in %s: the message figures before %s are counted from the messages left, "
                "since retention removed the others and their buckets were counted in %s",
                business_tz,
                gone_before,
                before.timezone,
            )
            gone_before = None
        frozen = counted_from_messages(metrics) if gone_before is not None else []
        kept: set[tuple[str, str, datetime]] = set()
        if gone_before is not None and frozen:
            found = await session.execute(
                select(AnalyticsData.metric, AnalyticsData.grain, AnalyticsData.bucket_start)
                .where(
                    AnalyticsData.metric.in_(frozen),
                    AnalyticsData.grain.in_(list(grains)),
                    AnalyticsData.bucket_start < gone_before,
                )
                .distinct()
            )
            kept = {(row.metric, row.grain, row.bucket_start.astimezone(UTC)) for row in found}
        await delete_rollup_rows(
            session, grains=list(grains), keeping=(frozen, gone_before) if gone_before is not None else None
        )
        await clear_customer_days(session)
        if spans:
            first = min(s[0] for s in spans)
            last = max(s[1] for s in spans)
            # One range covering whole buckets of every grain: days are scanned once and folded.
            start = min(bucket_floor(first, grain, business_tz) for grain in grains)
            end = max(next_bucket(bucket_floor(last, g, business_tz), g, business_tz) for g in grains)
            rows = await compute_rollup_rows(
                session, database.dialect, metrics, grains=grains, tz=business_tz, ranges=[(start, end)]
            )
            rows = [r for r in rows if (r.metric, r.grain, r.bucket_start.astimezone(UTC)) not in kept]
            await write_rollup_rows(session, database.dialect, rows)
            await recount_customer_days(session, database.dialect, business_tz, [(start, end)])
        await write_watermark(
            session,
            RollupWatermark(
                as_of, business_tz, tuple(grains), tuple(metrics), dict(metrics), customer_days=True
            ),
        )
        await session.commit()
    return RollupReport(tuple(grains), _bucket_count(rows), len(rows), as_of)


def _bucket_count(rows: Sequence[RollupRow]) -> int:
    return len({(r.grain, r.bucket_start) for r in rows})


def touched_bucket_runs(times: Iterable[datetime], grain: Grain, tz: str) -> list[tuple[datetime, datetime]]:
    """The buckets containing `times`, merged into contiguous [start, end) runs.

    Times are sorted first, so a bucket is floored once however many times fall into it.
    """
    runs: list[tuple[datetime, datetime]] = []
    for moment in sorted(times):
        if runs and moment < runs[-1][1]:
            continue
        start = bucket_floor(moment, grain, tz)
        end = next_bucket(start, grain, tz)
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return runs


def _runs_of(
    touched: TouchedFacts, sources: Iterable[str], grain: Grain, tz: str
) -> list[tuple[datetime, datetime]]:
    """Bucket runs covering the touched times and ranges of `sources`."""
    moments: list[datetime] = []
    for source in sources:
        moments += touched.times.get(source, ())
        for start, end in touched.ranges.get(source, ()):
            # A range's buckets: its first and last instants plus every bucket start between.
            moment = start
            while moment < end:
                moments.append(moment)
                moment = next_bucket(bucket_floor(moment, grain, tz), grain, tz)
            moments.append(end - timedelta(microseconds=1))
    return touched_bucket_runs(moments, grain, tz)


def _subtract_runs(
    runs: list[tuple[datetime, datetime]], covered: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """Parts of `runs` outside `covered` (both are unions of whole buckets of one grain)."""
    remaining = runs
    for low, high in covered:
        cut: list[tuple[datetime, datetime]] = []
        for start, end in remaining:
            if end <= low or start >= high:
                cut.append((start, end))
                continue
            if start < low:
                cut.append((start, low))
            if end > high:
                cut.append((high, end))
        remaining = cut
    return remaining


async def update_rollups_for(
    database: Database, touched: TouchedFacts, *, as_of: datetime | None = None
) -> RollupReport:
    """Recompute only the buckets the touched facts fall into, for the metrics reading those sources.

    Uses the grains and timezone of the last rebuild; without one there is nothing to update.
    A backdated order can make its customer's later orders "returning", so those buckets are redone
    too (those not already being redone). Per grain, each source is read in one query.
    """
    stamp = as_of or datetime.now(UTC)
    rows_written: list[RollupRow] = []
    async with database.sessions() as session:
        if database.dialect == "postgresql":
            # Workers update one at a time: each reads the facts after the one before committed, so a
            # recount that read older orders can never overwrite a newer one (kept days are whole sets).
            await session.execute(select(func.pg_advisory_xact_lock(ROLLUPS_LOCK_KEY)))
        watermark = await read_watermark(session)
        if watermark is None:
            raise RuntimeError("no rollups yet: run rebuild_rollups before incremental updates")
        tz = watermark.timezone
        all_metrics = rolled_up_metrics()
        touched_sources = touched.sources
        # Only what the last rebuild holds: a dimension added since waits for the next rebuild (the
        # background job makes one), so a rollup never holds some buckets of a dimension and not others.
        held = watermark.dimensions
        affected = {
            name: dims if held is None else tuple(d for d in dims if d in held.get(name, ()))
            for name, dims in all_metrics.items()
            if name in watermark.metrics
            and {m.source for m in METRIC_MEASURES[name].measures} & touched_sources
        }
        gone_before = await messages_gone_before(session)
        frozen = set(counted_from_messages(affected)) if gone_before is not None else set()
        for grain in watermark.grains:
            runs = _runs_of(touched, touched_sources, grain, tz)
            passes = [({n: d for n, d in affected.items() if n not in frozen}, runs)]
            if gone_before is not None and frozen:
                # Buckets from before the messages retention removed keep what they counted then.
                passes.append(
                    (
                        {n: d for n, d in affected.items() if n in frozen},
                        _from_first_bucket_after(runs, gone_before, grain, tz),
                    )
                )
            if "returning_customers" in affected and touched.later_order_times:
                later = _subtract_runs(touched_bucket_runs(touched.later_order_times, grain, tz), runs)
                passes.append(({"returning_customers": affected["returning_customers"]}, later))
            for metrics, ranges in passes:
                if not ranges or not metrics:
                    continue
                rows = await compute_rollup_rows(
                    session, database.dialect, metrics, grains=(grain,), tz=tz, ranges=ranges
                )
                await delete_rollup_rows(session, grains=[grain], metrics=list(metrics), ranges=ranges)
                await write_rollup_rows(session, database.dialect, rows)
                rows_written += rows
        if watermark.customer_days and "orders" in touched_sources:
            await recount_customer_days(
                session, database.dialect, tz, _runs_of(touched, ["orders"], "day", tz)
            )
        await write_watermark(
            session,
            RollupWatermark(
                stamp,
                tz,
                watermark.grains,
                watermark.metrics,
                watermark.dimensions,
                customer_days=watermark.customer_days,
            ),
        )
        await session.commit()
    return RollupReport(watermark.grains, _bucket_count(rows_written), len(rows_written), stamp)


class RollupRefresh:
    """Keeps analytics rollups current, pass after pass: buckets of facts recorded since the last pass,
    and of messages whose status changed (a delivery receipt changes the bucket the message was sent in).

    A database without rollups (seeded or restored without `switchboard rollups rebuild`) gets them
    built first; they then hold everything up to now, so the incremental pass starts from there.
    """

    def __init__(self, database: Database, business_tz: str) -> None:
        self.database = database
        self.business_tz = business_tz
        self._since: datetime | None = None
        self._events_seen = 0

    async def run(self, now: datetime) -> None:
        database = self.database
        async with database.read_sessions() as session:
            events_before = await session.scalar(select(func.max(MessageStatusEvent.id))) or 0
        built = await build_missing_rollups(database, business_tz=self.business_tz)
        if built is not None:
            log.info("analytics rollups were missing; built %s rows in %s buckets", built.rows, built.buckets)
            # Status changes that raced the build are read again by the next pass (it starts from before).
            self._since, self._events_seen = now, events_before
            return
        since = self._since or now - timedelta(days=1)
        async with database.read_sessions() as session:
            newest_event = await session.scalar(select(func.max(MessageStatusEvent.id))) or 0
            changed = list(
                await session.scalars(
                    select(MessageStatusEvent.communication_id)
                    .where(MessageStatusEvent.id > self._events_seen)
                    .distinct()
                    .limit(50_000)
                )
            )
            # A conversation's figures keep changing after it started (its bucket): a CSAT answer, for one.
            answered = list(
                await session.scalars(
                    select(ChatSession.id)
                    .where(ChatSession.csat_answered_at >= since - timedelta(minutes=5))
                    .limit(50_000)
                )
            )
            # ... and an SLA breach recorded since (the SLA met rate of the day the conversation started).
            answered += await session.scalars(
                select(ChatSlaEvent.session_id)
                .where(
                    ChatSlaEvent.kind == "breach", ChatSlaEvent.occurred_at >= since - timedelta(minutes=5)
                )
                .distinct()
                .limit(50_000)
            )
        spans = {source: [(since - timedelta(minutes=5), now + timedelta(minutes=1))] for source in SOURCES}
        by_range = await TouchedFacts.from_ranges(database, spans)
        # Appointments change before and after their time (booked, moved, cancelled; done or missed): their
        # last days are recounted every pass, so a bucket is right by the time queries read it from here.
        # From the last pass on, if that is earlier (a worker down for days): every day since is recounted.
        settling = min(since - timedelta(minutes=5), now - SETTLED_AFTER - timedelta(days=1))
        await update_rollups_for(
            database,
            TouchedFacts(
                ranges={source: ((settling, now + timedelta(minutes=1)),) for source in UNSETTLED_SOURCES}
            ),
        )
        by_id = (
            await TouchedFacts.from_ids(database, messages=changed, chats=answered)
            if changed or answered
            else TouchedFacts()
        )
        await update_rollups_for(
            database, TouchedFacts(by_id.times, by_range.later_order_times, by_range.ranges)
        )
        self._since, self._events_seen = now, newest_event
