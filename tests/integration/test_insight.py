"""Cross-system analyses agree with a plain-Python recount over simple selects, and with a hand-built case."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from reports.charts.render import render_png
from reports.daily_insight import cohort_months
from reports.insight import (
    campaign_attribution,
    cohort_heatmap_chart,
    cohort_retention,
    cost_revenue_chart,
    cost_vs_revenue,
    store_insight,
)
from reports.periods import PeriodSpec
from storage.database import Database
from storage.models import BulkMessaging, BusinessIntelligence, Customer, CustomerCommunication, Order, Refund
from storage.seeding import SeedPlan, seed_database

TZ = "Europe/Berlin"
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
PLAN = SeedPlan(customers=150, days=120, seed=11, end_date=date(2026, 11, 30))
COUNTED = {"paid", "shipped", "delivered", "refunded"}
ATTRIBUTABLE = {"sent", "delivered", "read"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def all_rows(database: Database) -> dict[str, list[tuple[object, ...]]]:
    async with database.read_sessions() as session:
        return {
            "orders": [
                tuple(r)
                for r in await session.execute(
                    select(Order.id, Order.customer_id, Order.status, Order.created_at, Order.amount_minor)
                )
            ],
            "refunds": [
                tuple(r) for r in await session.execute(select(Refund.order_id, Refund.amount_minor))
            ],
            "messages": [
                tuple(r)
                for r in await session.execute(
                    select(
                        CustomerCommunication.customer_id,
                        CustomerCommunication.direction,
                        CustomerCommunication.status,
                        CustomerCommunication.created_at,
                        CustomerCommunication.channel,
                        CustomerCommunication.campaign_id,
                        CustomerCommunication.cost_micros,
                    )
                )
            ],
            "campaigns": [
                tuple(r) for r in await session.execute(select(BulkMessaging.id, BulkMessaging.slug))
            ],
        }


def recount_attribution(
    rows: dict[str, list[tuple[object, ...]]], start: datetime, end: datetime, window: timedelta
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, set[object]], dict[str, set[object]]]:
    slugs = dict(rows["campaigns"])
    refunded: dict[object, int] = defaultdict(int)
    for order_id, amount in rows["refunds"]:
        refunded[order_id] += amount  # type: ignore[operator]
    sent = [m for m in rows["messages"] if m[1] == "outbound" and m[2] in ATTRIBUTABLE and m[0] is not None]
    channels: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    campaigns: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for order_id, customer, status, at, amount in rows["orders"]:
        if status not in COUNTED or not start <= at < end:  # type: ignore[operator]
            continue
        before = [
            (m[3], m[4], slugs.get(m[5]) or "")  # type: ignore[call-overload]
            for m in sent
            if m[0] == customer and at - window <= m[3] < at  # type: ignore[operator]
        ]
        if not before:
            continue
        _, channel, slug = max(before)
        net = (amount - refunded[order_id]) / 100  # type: ignore[operator]
        for totals, key in ((channels, channel), (campaigns, slug or "(none)")):
            totals[key][0] += 1
            totals[key][1] += net
    reached_channel: dict[str, set[object]] = defaultdict(set)
    reached_campaign: dict[str, set[object]] = defaultdict(set)
    for customer, _, _, at, channel, campaign_id, _ in sent:
        if start - window <= at < end:  # type: ignore[operator]
            reached_channel[channel].add(customer)  # type: ignore[index]
            reached_campaign[slugs.get(campaign_id) or "(none)"].add(customer)  # type: ignore[call-overload]
    return channels, campaigns, reached_channel, reached_campaign


async def test_attribution_and_cost_match_a_plain_recount(database: Database) -> None:
    await seed_database(database, PLAN)
    insight = await campaign_attribution(database, PeriodSpec("last_month"), now=NOW, business_tz=TZ)
    rows = await all_rows(database)
    window = timedelta(days=7)
    channels, campaigns, reached_channel, reached_campaign = recount_attribution(
        rows, insight.range.start, insight.range.end, window
    )
    result = insight.result
    assert result.attributed_orders > 0, "the seeded month should have attributed orders"
    for produced, expected, reached in (
        (result.by_channel, channels, reached_channel),
        (result.by_campaign, campaigns, reached_campaign),
    ):
        got = {r.key: r for r in produced}
        assert set(got) == set(expected) | set(reached)
        for key, row in got.items():
            orders, revenue = expected.get(key, [0, 0.0])
            assert row.attributed_orders == orders, key
            assert abs(row.attributed_revenue - revenue) < 0.01, key
            assert row.customers_messaged == len(reached.get(key, ())), key
            if row.customers_messaged:
                assert row.conversion_rate == orders / row.customers_messaged
    assert "November 2026" in insight.summary or "Nov" in insight.summary
    assert TZ in insight.summary and "7 days" in insight.summary

    costs = await cost_vs_revenue(database, PeriodSpec("last_month"), now=NOW, business_tz=TZ)
    expected_cost: dict[str, int] = defaultdict(int)
    for _, direction, _, at, channel, _, micros in rows["messages"]:
        if direction == "outbound" and insight.range.start <= at < insight.range.end:  # type: ignore[operator]
            expected_cost[channel] += micros or 0  # type: ignore[index, operator]
    by_channel = {r.channel: r for r in costs.result.by_channel}
    for channel, micros in expected_cost.items():
        assert abs(by_channel[channel].cost - micros / 1_000_000) < 1e-6
        assert by_channel[channel].attributed_revenue == pytest.approx(
            channels.get(channel, [0, 0.0])[1], abs=0.01
        )
    assert costs.result.cost_currency == "USD" and costs.result.revenue_currency == "EUR"
    assert "US$" in costs.summary and "€" in costs.summary and "not converted" in costs.summary
    total = f"€{costs.result.total_attributed_revenue:,.2f}"  # as every other answer writes money
    assert total in costs.summary and f"€{insight.result.attributed_revenue:,.2f} net" in insight.summary
    chart = cost_revenue_chart(costs)
    assert chart.kind == "bar" and render_png(chart).startswith(PNG_MAGIC)
    # A bar per channel of its attributed revenue, labelled with its cost, recounted from the rows.
    [revenue] = chart.series
    assert chart.currency == "EUR" and len(chart.categories) == len(by_channel) == len(revenue.values)
    for (channel, row), label, value in zip(
        by_channel.items(), chart.categories, revenue.values, strict=True
    ):
        assert value == pytest.approx(channels.get(channel, [0, 0.0])[1], abs=0.01)
        assert label.endswith(f", US${expected_cost.get(channel, 0) / 1_000_000:,.2f}"), label
        assert row.cost == pytest.approx(expected_cost.get(channel, 0) / 1_000_000)

    async with database.sessions() as session:
        stored = await store_insight(session, insight)
        await session.commit()
        assert stored.id is not None
    async with database.read_sessions() as session:
        row = (await session.scalars(select(BusinessIntelligence))).one()
    assert row.kind == "attribution" and row.summary == insight.summary
    assert row.result["attributed_orders"] == result.attributed_orders
    assert row.period_start == insight.range.start and row.parameters["window_days"] == 7


async def test_cohort_retention_matches_a_plain_recount(database: Database) -> None:
    await seed_database(database, PLAN)
    period = PeriodSpec.between(date(2026, 8, 1), date(2026, 11, 30))
    insight = await cohort_retention(database, period, now=NOW, business_tz=TZ, months=3)
    rows = await all_rows(database)
    local = ZoneInfo(TZ)
    months_of: dict[object, set[tuple[int, int]]] = defaultdict(set)
    for _, customer, status, at, _ in rows["orders"]:
        if status in COUNTED and at < insight.range.end:  # type: ignore[operator]
            moment = at.astimezone(local)  # type: ignore[attr-defined]
            months_of[customer].add((moment.year, moment.month))
    cohorts: dict[tuple[int, int], list[object]] = defaultdict(list)
    for customer, months in months_of.items():
        first = min(months)
        if (2026, 8) <= first <= (2026, 11):
            cohorts[first].append(customer)

    produced = {(r.cohort.year, r.cohort.month): r for r in insight.result.rows}
    assert set(produced) == set(cohorts) and produced
    for (year, month), members in cohorts.items():
        row = produced[(year, month)]
        assert row.customers == len(members)
        for k in range(1, 4):
            index = year * 12 + month - 1 + k
            target = (index // 12, index % 12 + 1)
            if target > (2026, 11):
                assert row.retention[k - 1] is None
            else:
                share = sum(1 for c in members if target in months_of[c]) / len(members)
                assert row.retention[k - 1] == share, (year, month, k)
    assert TZ in insight.summary and "cohort" in insight.summary
    chart = cohort_heatmap_chart(insight)
    assert chart.kind == "cohort_heatmap" and len(chart.heatmap or ()) == len(produced)
    assert render_png(chart).startswith(PNG_MAGIC)


async def test_a_hand_built_case_has_the_known_answer(database: Database) -> None:
    """Ann gets an SMS 2 days before ordering (attributed); Bob's email is 10 days old (not); Cy is only messaged."""
    order_at = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    async with database.sessions() as session:
        campaign = BulkMessaging(slug="autumn", name="Autumn", template_name="promo")
        ann, bob, cy = (Customer(name=n, country="DE") for n in ("Ann", "Bob", "Cy"))
        session.add_all([campaign, ann, bob, cy])
        await session.flush()

        def message(customer: Customer, channel: str, at: datetime, campaign_id: int | None) -> None:
            session.add(
                CustomerCommunication(
                    customer_id=customer.id, channel=channel, provider="sandbox", direction="outbound",
                    source="campaign" if campaign_id else "manual", to_address="x", body="hi", status="delivered",
                    campaign_id=campaign_id, cost_micros=10_000, currency="USD", created_at=at,
                )
            )  # fmt: skip

        message(ann, "sms", order_at - timedelta(days=2), campaign.id)
        message(bob, "email", order_at - timedelta(days=10), None)
        message(cy, "sms", order_at - timedelta(days=1), campaign.id)
        for number, customer, amount in (("A-1", ann, 5000), ("B-1", bob, 7000)):
            session.add(
                Order(
                    order_number=number, customer_id=customer.id, status="paid", source_channel="web",
                    amount_minor=amount, currency="EUR", created_at=order_at,
                )
            )  # fmt: skip
        await session.flush()
        ann_order = (await session.scalars(select(Order).where(Order.order_number == "A-1"))).one()
        session.add(Refund(order_id=ann_order.id, amount_minor=1000, currency="EUR", created_at=order_at))
        await session.commit()

    period = PeriodSpec.between(date(2026, 11, 1), date(2026, 11, 30))
    insight = await campaign_attribution(database, period, now=NOW, business_tz=TZ)
    result = insight.result
    assert (result.orders, result.attributed_orders, result.attributed_revenue) == (2, 1, 40.0)
    sms = {r.key: r for r in result.by_channel}["sms"]
    assert (sms.attributed_orders, sms.attributed_revenue, sms.customers_messaged) == (1, 40.0, 2)
    assert sms.conversion_rate == 0.5
    autumn = {r.key: r for r in result.by_campaign}["autumn"]
    assert (autumn.attributed_orders, autumn.conversion_rate) == (1, 0.5)
    assert "Of 2 counted orders" in insight.summary and "1 (50.0%)" in insight.summary

    costs = await cost_vs_revenue(database, period, now=NOW, business_tz=TZ)
    by_channel = {r.channel: r for r in costs.result.by_channel}
    assert by_channel["sms"].cost == 0.02 and by_channel["sms"].attributed_revenue == 40.0
    assert by_channel["email"].cost == 0.01 and by_channel["email"].attributed_revenue == 0.0

    retention = await cohort_retention(database, period, now=NOW, business_tz=TZ, months=2)
    (row,) = retention.result.rows
    assert (row.cohort, row.customers, row.retention) == (date(2026, 11, 1), 2, (None, None))


async def test_the_customer_pages_cohorts_are_the_last_six_months_each_followed_up_to_last_month(
    database: Database,
) -> None:
    """On 1 December the page's cohorts are June to November: June's is followed in July to November (five
    months measured, the sixth still to come), November's in none yet."""
    await seed_database(database, PLAN)
    window = cohort_months(NOW, TZ)
    assert (window.start_date, window.end_date) == (date(2026, 6, 1), date(2026, 11, 30))
    insight = await cohort_retention(database, window, now=NOW, business_tz=TZ)
    measured = {r.cohort: sum(cell is not None for cell in r.retention) for r in insight.result.rows}
    assert measured, "the seed has first orders in these months"
    for cohort, months in measured.items():
        assert months == 11 - cohort.month, (cohort, months)
