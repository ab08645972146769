"""Every shipped KPI equals an independent computation in plain Python over the raw seeded rows.

The reference side fetches whole tables with simple selects and does its own filtering, local-time
bucketing (zoneinfo) and arithmetic, so it shares no SQL with the query layer it checks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from reports.metrics import REGISTRY
from reports.periods import PeriodSpec, TimeRange, previous_period, resolve_period
from reports.query import MetricQuery, run_query
from storage.database import Database
from storage.models import (
    Appointment,
    BulkMessaging,
    ChatSession,
    ChatSlaEvent,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    Location,
    Order,
    Refund,
    VideoConsultation,
)
from storage.seeding import SeedPlan, seed_database

TZ = "Europe/Berlin"
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
PLAN = SeedPlan(customers=160, days=100, seed=11, end_date=date(2026, 11, 30))

COUNTED = {"paid", "shipped", "delivered", "refunded"}
SENT = {"queued", "sent", "delivered", "read", "failed", "undelivered"}


@dataclass
class Facts:
    """Every row the KPIs read, as plain Python objects."""

    orders: list[Order]
    refunded: dict[int, int]
    customers: dict[int, Customer]
    locations: dict[int, Location]
    campaigns: dict[int, BulkMessaging]
    appointments: list[Appointment]
    videos: list[VideoConsultation]
    messages: list[CustomerCommunication]
    inbound: list[CustomerCommunication]
    opt_outs: list[ConsentRecord]
    chats: list[ChatSession]
    sla_breaches: list[ChatSlaEvent]


async def load_facts(database: Database) -> Facts:
    async with database.read_sessions() as session:
        refunded: dict[int, int] = defaultdict(int)
        for refund in await session.scalars(select(Refund)):
            refunded[refund.order_id] += refund.amount_minor
        return Facts(
            orders=list(await session.scalars(select(Order))),
            refunded=refunded,
            customers={c.id: c for c in await session.scalars(select(Customer))},
            locations={loc.id: loc for loc in await session.scalars(select(Location))},
            campaigns={c.id: c for c in await session.scalars(select(BulkMessaging))},
            appointments=list(await session.scalars(select(Appointment))),
            videos=list(await session.scalars(select(VideoConsultation))),
            messages=[
                m for m in await session.scalars(select(CustomerCommunication)) if m.direction == "outbound"
            ],
            inbound=[
                m for m in await session.scalars(select(CustomerCommunication)) if m.direction == "inbound"
            ],
            opt_outs=[
                r
                for r in await session.scalars(select(ConsentRecord))
                if r.status == "opted_out"
                and r.source != "erasure"  # an erasure closes the ledger: no opt-out
                and not (r.detail or "").startswith("imported from ")  # said elsewhere, before
            ],
            chats=list(await session.scalars(select(ChatSession))),
            sla_breaches=[e for e in await session.scalars(select(ChatSlaEvent)) if e.kind == "breach"],
        )


def within(moment: datetime, start: datetime, end: datetime) -> bool:
    return start <= moment < end


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def reference_kpis(
    facts: Facts, start: datetime, end: datetime, prev_start: datetime
) -> dict[str, float | None]:
    """Each KPI over [start, end), computed the long way."""
    orders = [o for o in facts.orders if o.status in COUNTED and within(o.created_at, start, end)]
    net = [(o.amount_minor - facts.refunded.get(o.id, 0)) / 100 for o in orders]
    revenue = sum(net)
    first_order: dict[int, datetime] = {}
    for o in facts.orders:
        if o.status in COUNTED and (
            o.customer_id not in first_order or o.created_at < first_order[o.customer_id]
        ):
            first_order[o.customer_id] = o.created_at
    buyers = {o.customer_id for o in orders}
    previous_buyers = {
        o.customer_id for o in facts.orders if o.status in COUNTED and within(o.created_at, prev_start, start)
    }
    appointments = [
        a for a in facts.appointments if a.status != "cancelled" and within(a.scheduled_at, start, end)
    ]
    due = [a for a in appointments if a.status in ("completed", "no_show")]
    messages = [m for m in facts.messages if within(m.created_at, start, end)]
    sent = [m for m in messages if m.status in SENT]
    delivered = [m for m in messages if m.status in ("delivered", "read")]
    chats = [c for c in facts.chats if within(c.started_at, start, end)]
    answered = [c for c in chats if c.first_response_at is not None]
    closed = [c for c in chats if c.closed_at is not None]
    rated = [c for c in chats if c.csat_score is not None]
    campaign_orders = [o for o in orders if o.campaign_id is not None]
    campaign_sent = [m for m in sent if m.campaign_id is not None]
    sent_cost = sum((m.cost_micros or 0) for m in sent) / 1e6
    breached = {e.session_id for e in facts.sla_breaches}
    breached_on = {
        target: {e.session_id for e in facts.sla_breaches if e.metric == target}
        for target in ("first_response", "resolution")
    }
    return {
        "revenue": revenue,
        "orders": float(len(orders)),
        "average_order_value": ratio(revenue, len(orders)),
        "new_customers": float(sum(within(c.created_at, start, end) for c in facts.customers.values())),
        "active_customers": float(len(buyers)),
        "returning_customers": float(sum(first_order[c] < start for c in buyers)),
        "churn_rate": ratio(len(previous_buyers - buyers), len(previous_buyers)),
        "appointments": float(len(appointments)),
        "no_show_rate": ratio(sum(a.status == "no_show" for a in due), len(due)),
        "video_consultations": float(
            sum(v.status != "cancelled" and within(v.scheduled_at, start, end) for v in facts.videos)
        ),
        "messages_sent": float(len(sent)),
        "messages_received": float(
            sum(within(m.created_at, start, end) for m in facts.inbound)  # what customers wrote us
        ),
        "messages_delivered": float(len(delivered)),
        "messages_read": float(sum(m.status == "read" for m in messages)),
        "messages_failed": float(sum(m.status in ("failed", "undelivered", "dead") for m in messages)),
        "delivery_rate": ratio(len(delivered), len(sent)),
        "reply_rate": ratio(sum(m.replied_at is not None for m in sent), len(sent)),
        "opt_out_rate": ratio(sum(within(r.recorded_at, start, end) for r in facts.opt_outs), len(sent)),
        "opt_outs": float(sum(within(r.recorded_at, start, end) for r in facts.opt_outs)),
        "cost_per_message": ratio(sent_cost, len(sent)),
        "communication_cost": sum((m.cost_micros or 0) for m in messages if m.sent_at is not None) / 1e6,
        "conversations": float(len(chats)),
        "first_response_time": ratio(
            sum(
                (c.first_response_at - c.started_at).total_seconds() for c in answered if c.first_response_at
            ),
            len(answered),
        ),
        "resolution_time": ratio(
            sum((c.closed_at - c.started_at).total_seconds() for c in closed if c.closed_at), len(closed)
        ),
        "csat": ratio(sum(c.csat_score or 0 for c in rated), len(rated)),
        "sla_breaches": float(sum(within(e.occurred_at, start, end) for e in facts.sla_breaches)),
        "sla_met_rate": ratio(sum(c.id not in breached for c in chats), len(chats)),
        "first_response_within_sla": ratio(
            sum(c.id not in breached_on["first_response"] for c in chats), len(chats)
        ),
        "resolution_within_sla": ratio(sum(c.id not in breached_on["resolution"] for c in chats), len(chats)),
        "campaign_conversion": ratio(len(campaign_orders), len(campaign_sent)),
        "campaign_revenue": sum(
            (o.amount_minor - facts.refunded.get(o.id, 0)) / 100 for o in campaign_orders
        ),
    }


def close(actual: float | None, expected: float | None) -> bool:
    if actual is None or expected is None:
        return actual is None and expected is None
    return abs(actual - expected) <= 1e-6 * max(1.0, abs(expected))


async def seeded(database: Database) -> Facts:
    await seed_database(database, PLAN)
    return await load_facts(database)


@pytest.mark.parametrize(
    "period",
    [
        PeriodSpec.last_n_days(30),
        PeriodSpec("last_month"),
        PeriodSpec.between(date(2026, 10, 20), date(2026, 11, 3)),
    ],
    ids=["last_30_days", "last_month", "across_dst_end"],
)
async def test_every_kpi_matches_an_independent_computation(database: Database, period: PeriodSpec) -> None:
    facts = await seeded(database)
    time_range = resolve_period(period, NOW, TZ)
    expected = reference_kpis(facts, time_range.start, time_range.end, previous_period(time_range).start)
    assert expected["orders"] and expected["messages_sent"], "the seed must give the period some facts"

    mismatches = {}
    for name in REGISTRY:
        result = await run_query(database, MetricQuery((name,), period), now=NOW, business_tz=TZ)
        (series,) = result.series
        assert result.source == "raw"
        if not close(series.total, expected[name]):
            mismatches[name] = (series.total, expected[name])
    assert mismatches == {}
    assert set(expected) == set(REGISTRY)


def local_days(time_range: TimeRange) -> list[datetime]:
    zone = ZoneInfo(TZ)
    day = time_range.start.astimezone(zone).date()
    starts = []
    while (moment := datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)) < time_range.end:
        starts.append(moment)
        day += timedelta(days=1)
    return starts


DIMENSION_OF: dict[str, Callable[[Facts, Any], str]] = {
    "source_channel": lambda facts, o: o.source_channel,
    "location": lambda facts, o: facts.locations[o.location_id].code if o.location_id else "(none)",
    "campaign": lambda facts, o: facts.campaigns[o.campaign_id].slug if o.campaign_id else "(none)",
}


@pytest.mark.parametrize("dimension", ["source_channel", "location", "campaign"])
async def test_daily_revenue_split_by_a_dimension_matches(database: Database, dimension: str) -> None:
    facts = await seeded(database)
    period = PeriodSpec.between(date(2026, 10, 19), date(2026, 11, 1))  # crosses the 25 Oct DST switch
    result = await run_query(
        database,
        MetricQuery(("revenue",), period, grain="day", dimensions=(dimension,)),
        now=NOW,
        business_tz=TZ,
    )
    starts = local_days(result.range)
    assert len(starts) == 14
    expected: dict[tuple[str, datetime], float] = defaultdict(float)
    zone = ZoneInfo(TZ)
    for order in facts.orders:
        if order.status in COUNTED and within(order.created_at, result.range.start, result.range.end):
            local_day = order.created_at.astimezone(zone).date()
            bucket = datetime.combine(local_day, datetime.min.time(), zone).astimezone(UTC)
            value = DIMENSION_OF[dimension](facts, order)
            expected[(value, bucket)] += (order.amount_minor - facts.refunded.get(order.id, 0)) / 100
    for series in result.series:
        assert [p[0] for p in series.points] == starts
        for bucket, value in series.points:
            assert close(value, expected.get((series.dimension_value or "", bucket), 0.0)), (
                series.name,
                bucket,
            )
    assert {s.dimension_value for s in result.series} == {v for v, _ in expected}


@pytest.mark.parametrize("rolled_up", [False, True], ids=["raw", "rollups"])
async def test_opt_outs_by_campaign_credit_each_to_the_campaign_whose_message_came_last_before_it(
    database: Database, rolled_up: bool
) -> None:
    """ "which campaign had the most opt-outs": each opt-out goes to the campaign whose message reached the
    customer last on that channel in the 7 days before (as the campaign's page counts), recounted here."""
    from reports.rollups import rebuild_rollups

    # More customers than the other tests seed: enough campaign messages for opt-outs to follow some.
    await seed_database(database, SeedPlan(customers=1200, days=100, seed=11, end_date=date(2026, 11, 30)))
    facts = await load_facts(database)
    if rolled_up:
        await rebuild_rollups(database, business_tz=TZ)
    period = PeriodSpec.last_n_days(90)
    result = await run_query(
        database,
        MetricQuery(("opt_outs", "opt_out_rate"), period, dimensions=("campaign",)),
        now=NOW,
        business_tz=TZ,
    )
    expected: dict[str, int] = defaultdict(int)
    for record in facts.opt_outs:
        if not within(record.recorded_at, result.range.start, result.range.end):
            continue
        before = [
            (m.sent_at, m.id, facts.campaigns[m.campaign_id].slug)
            for m in facts.messages
            if m.customer_id == record.customer_id
            and m.channel == record.channel
            and m.campaign_id is not None
            and m.sent_at is not None
            and m.sent_at <= record.recorded_at < m.sent_at + timedelta(days=7)
        ]
        expected[max(before)[2] if before else "(none)"] += 1
    assert len(expected) > 2 and expected["(none)"], "the seed must credit some opt-outs to campaigns"
    counted = {s.dimension_value or "(none)": s.total for s in result.series if s.metric == "opt_outs"}
    assert counted == {slug: float(n) for slug, n in expected.items()}
    rates = [s for s in result.series if s.metric == "opt_out_rate"]
    assert {s.dimension_value for s in rates} >= set(expected)
    for series in rates:
        sent = sum(
            m.status in SENT
            and within(m.created_at, result.range.start, result.range.end)
            and (facts.campaigns[m.campaign_id].slug if m.campaign_id else "(none)") == series.dimension_value
            for m in facts.messages
        )
        assert close(series.total, ratio(expected.get(series.dimension_value or "", 0), sent)), series.name


async def test_messages_by_channel_per_week_match(database: Database) -> None:
    facts = await seeded(database)
    result = await run_query(
        database,
        MetricQuery(
            ("messages_sent", "delivery_rate"),
            PeriodSpec("last_month"),
            grain="week",
            dimensions=("channel",),
        ),
        now=NOW,
        business_tz=TZ,
    )
    for series in result.series:
        sent = [
            m
            for m in facts.messages
            if m.channel == series.dimension_value
            and m.status in SENT
            and within(m.created_at, result.range.start, result.range.end)
        ]
        delivered = sum(m.status in ("delivered", "read") for m in sent)
        expected = float(len(sent)) if series.metric == "messages_sent" else ratio(delivered, len(sent))
        assert close(series.total, expected), series.name


async def test_revenue_and_buyers_split_two_ways_match(database: Database) -> None:
    """A two-way split (location and source channel) per week: each pair's figures recounted from the orders,
    with rollups built, which hold one dimension per row, so the answer must come from the raw facts."""
    from reports.rollups import rebuild_rollups

    facts = await seeded(database)
    await rebuild_rollups(database, business_tz=TZ)
    period = PeriodSpec.between(date(2026, 10, 19), date(2026, 11, 15))
    zone = ZoneInfo(TZ)
    revenue: dict[tuple[str, str, datetime], float] = defaultdict(float)
    buyers: dict[tuple[str, str], set[int]] = defaultdict(set)
    result = await run_query(
        database,
        MetricQuery(
            ("revenue", "active_customers"), period, grain="week", dimensions=("location", "source_channel")
        ),
        now=NOW,
        business_tz=TZ,
    )
    assert result.source == "raw"
    assert result.dimensions == ("location", "source_channel")
    for order in facts.orders:
        if order.status in COUNTED and within(order.created_at, result.range.start, result.range.end):
            local_day = order.created_at.astimezone(zone).date()
            monday = local_day - timedelta(days=local_day.weekday())
            bucket = datetime.combine(monday, datetime.min.time(), zone).astimezone(UTC)
            pair = (DIMENSION_OF["location"](facts, order), order.source_channel)
            revenue[(*pair, bucket)] += (order.amount_minor - facts.refunded.get(order.id, 0)) / 100
            buyers[pair].add(order.customer_id)
    pairs = {(location, channel) for location, channel, _ in revenue}
    assert len(pairs) > 4, "the seed must give several pairs"
    for metric in ("revenue", "active_customers"):
        found = result.series_for(metric)
        assert {s.dimension_values for s in found} == pairs
        for series in found:
            location, channel = series.dimension_values
            assert series.dimension_value == f"{location} · {channel}"
            if metric == "revenue":
                for bucket, value in series.points:
                    assert close(value, revenue.get((location, channel, bucket), 0.0)), (series.name, bucket)
                weekly = sum(v for (lo, ch, _), v in revenue.items() if (lo, ch) == (location, channel))
                assert close(series.total, weekly)
            else:
                # A distinct count over the whole period, not a sum of the weeks.
                assert series.total == len(buyers[(location, channel)]), series.name
