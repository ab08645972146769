"""The kept customer days (customer_activity_days) answer active, returning and churned customers exactly
as the orders do: after a rebuild, after backdated and cancelled orders, and recounted by the check."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from reports.periods import PeriodSpec, previous_period, resolve_period
from reports.query import MetricQuery, run_query
from reports.rollups import TouchedFacts, build_missing_rollups, rebuild_rollups, update_rollups_for
from storage.analytics.customer_days import bitset, check_customer_days, members
from storage.analytics.facts import COUNTED_ORDER_STATUSES
from storage.analytics.rollup_store import read_watermark, write_watermark
from storage.database import Database
from storage.models import Customer, CustomerActivityDay, Order
from storage.seeding import SeedPlan, seed_database
from tests.integration.test_rollups import assert_same_answers

TZ = "Europe/Berlin"
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
PLAN = SeedPlan(customers=150, days=120, seed=11, end_date=date(2026, 11, 30))

QUERIES = [
    MetricQuery(("active_customers", "returning_customers"), PeriodSpec.last_n_days(30),
                comparison="previous_period"),
    MetricQuery(("active_customers", "returning_customers"), PeriodSpec.last_n_days(30), grain="day"),
    MetricQuery(("active_customers", "returning_customers"), PeriodSpec("last_quarter"), grain="month"),
    # 25 October 2026: the clocks go back in Berlin inside the period.
    MetricQuery(("active_customers", "returning_customers", "churn_rate"),
                PeriodSpec.between(date(2026, 10, 1), date(2026, 10, 31))),
    MetricQuery(("churn_rate",), PeriodSpec("last_month"), comparison="previous_period"),
    MetricQuery(("churn_rate",), PeriodSpec.between(date(2026, 9, 1), date(2026, 11, 30)), grain="month"),
]  # fmt: skip


async def counted_orders(database: Database) -> list[tuple[int, datetime]]:
    async with database.read_sessions() as session:
        rows = await session.execute(
            select(Order.customer_id, Order.created_at).where(Order.status.in_(COUNTED_ORDER_STATUSES))
        )
        return [(customer, at) for customer, at in rows]


async def answers_equal_the_orders(database: Database) -> None:
    for query in QUERIES:
        raw = await run_query(database, query, now=NOW, business_tz=TZ, prefer_rollups=False)
        kept = await run_query(database, query, now=NOW, business_tz=TZ)
        assert kept.source == "rollup", query  # no distinct count read the orders
        assert_same_answers(raw, kept)
        for before, after in zip(
            raw.comparison_totals.values(), kept.comparison_totals.values(), strict=True
        ):
            assert before == after


async def test_the_kept_days_answer_as_the_orders_do_and_recount_from_the_rows(database: Database) -> None:
    await seed_database(database, PLAN)
    await rebuild_rollups(database, grains=("day", "month"), business_tz=TZ)
    await answers_equal_the_orders(database)

    # Recounted by hand from the order rows: last 30 complete days, and who had ordered before them.
    period = resolve_period(PeriodSpec.last_n_days(30), NOW, TZ)
    orders = await counted_orders(database)
    active = {c for c, at in orders if period.start <= at < period.end}
    earlier = {c for c, at in orders if at < period.start}
    result = await run_query(
        database,
        MetricQuery(("active_customers", "returning_customers"), PeriodSpec.last_n_days(30)),
        now=NOW,
        business_tz=TZ,
    )
    assert len(active) > 20 and 0 < len(active & earlier) < len(active)
    assert [s.total for s in result.series] == [len(active), len(active & earlier)]

    # Churn of last month: customers of the month before who did not come back.
    month = resolve_period(PeriodSpec("last_month"), NOW, TZ)
    before = previous_period(month)
    base = {c for c, at in orders if before.start <= at < month.start}
    back = {c for c, at in orders if month.start <= at < month.end}
    churn = await run_query(
        database, MetricQuery(("churn_rate",), PeriodSpec("last_month")), now=NOW, business_tz=TZ
    )
    assert churn.series[0].total is not None
    assert abs(churn.series[0].total - len(base - back) / len(base)) < 1e-12


async def test_backdated_and_cancelled_orders_update_their_days(database: Database) -> None:
    await seed_database(database, PLAN)
    await rebuild_rollups(database, grains=("day", "month"), business_tz=TZ)
    async with database.sessions() as session:
        newcomer = Customer(name="Backdated Newcomer", country="DE", locale="de")
        session.add(newcomer)
        await session.flush()
        # Local 00:30 on 25 October (22:30 UTC the day before): the order belongs to the 25th in Berlin.
        backdated = Order(
            order_number="LATE-1", customer_id=newcomer.id, status="paid", source_channel="web",
            amount_minor=4200, currency="EUR", created_at=datetime(2026, 10, 24, 22, 30, tzinfo=UTC),
        )  # fmt: skip
        session.add(backdated)
        cancelled_id = await session.scalar(
            select(Order.id)
            .where(Order.status == "paid", Order.created_at >= datetime(2026, 11, 10, tzinfo=UTC))
            .order_by(Order.id)
            .limit(1)
        )
        assert cancelled_id is not None
        await session.execute(update(Order).where(Order.id == cancelled_id).values(status="cancelled"))
        await session.commit()
        backdated_id, newcomer_id = backdated.id, newcomer.id

    touched = await TouchedFacts.from_ids(database, orders=[backdated_id, cancelled_id])
    await update_rollups_for(database, touched)
    await answers_equal_the_orders(database)
    check = await check_customer_days(database, TZ)
    assert check.days > 100 and check.drift == []

    day = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # local midnight of 25 October (CEST)
    async with database.read_sessions() as session:
        kept = await session.scalar(
            select(CustomerActivityDay.customers).where(CustomerActivityDay.day_start == day)
        )
    assert kept is not None and newcomer_id in members(int.from_bytes(kept, "little"))


async def test_the_check_finds_a_day_that_drifted_and_repairs_it(database: Database) -> None:
    await seed_database(database, PLAN)
    await rebuild_rollups(database, grains=("day",), business_tz=TZ)
    async with database.sessions() as session:
        day, customers = (
            await session.execute(
                select(CustomerActivityDay.day_start, CustomerActivityDay.customers)
                .order_by(CustomerActivityDay.day_start.desc())
                .limit(1)
            )
        ).one()
        wrong = members(int.from_bytes(customers, "little"))[1:]
        await session.execute(
            update(CustomerActivityDay)
            .where(CustomerActivityDay.day_start == day)
            .values(customers=bitset(wrong), customer_count=len(wrong))
        )
        await session.commit()

    check = await check_customer_days(database, TZ)
    assert [(d, kept, recounted) for d, kept, recounted in check.drift] == [(day, len(wrong), len(wrong) + 1)]
    repaired = await check_customer_days(database, TZ, repair=True)
    assert repaired.repaired
    assert (await check_customer_days(database, TZ)).drift == []
    assert day.astimezone(ZoneInfo(TZ)).time().hour == 0  # kept days start at local midnight


async def test_rollups_built_before_the_kept_days_are_rebuilt_with_them(database: Database) -> None:
    await seed_database(database, PLAN)
    await rebuild_rollups(database, grains=("day",), business_tz=TZ)
    async with database.sessions() as session:
        watermark = await read_watermark(session)
        assert watermark is not None and watermark.customer_days
        await session.execute(CustomerActivityDay.__table__.delete())
        # What a database upgraded to migration 0016 holds: rollups, and no days yet.
        from dataclasses import replace

        await write_watermark(session, replace(watermark, customer_days=False))
        await session.commit()

    query = MetricQuery(("active_customers",), PeriodSpec.last_n_days(30))
    raw = await run_query(database, query, now=NOW, business_tz=TZ, prefer_rollups=False)
    meanwhile = await run_query(database, query, now=NOW, business_tz=TZ)
    assert meanwhile.source == "raw" and meanwhile.series[0].total == raw.series[0].total

    assert await build_missing_rollups(database, business_tz=TZ) is not None
    after = await run_query(database, query, now=NOW, business_tz=TZ)
    assert after.source == "rollup" and after.series[0].total == raw.series[0].total
    assert await build_missing_rollups(database, business_tz=TZ) is None


def test_a_bitset_holds_exactly_its_customers() -> None:
    ids = [0, 7, 8, 9, 1000, 123_457]
    packed = bitset(ids)
    assert len(packed) == 123_457 // 8 + 1
    assert members(int.from_bytes(packed, "little")) == ids
    assert bitset([]) == b"" and members(0) == []
    assert (
        int.from_bytes(bitset([1, 2, 3]), "little") & ~int.from_bytes(bitset([2]), "little")
    ).bit_count() == 2


async def test_seeding_again_with_force_forgets_the_kept_days_of_the_replaced_orders(
    database: Database,
) -> None:
    await seed_database(database, PLAN)
    await rebuild_rollups(database, grains=("day",), business_tz=TZ)
    await seed_database(
        database, SeedPlan(customers=40, days=30, seed=99, end_date=PLAN.end_date), force=True
    )
    async with database.read_sessions() as session:
        assert await read_watermark(session) is None
        assert (await session.execute(select(CustomerActivityDay.day_start).limit(1))).first() is None
    query = MetricQuery(("active_customers",), PeriodSpec.last_n_days(30))
    raw = await run_query(database, query, now=NOW, business_tz=TZ, prefer_rollups=False)
    assert (await run_query(database, query, now=NOW, business_tz=TZ)).series[0].total == raw.series[0].total
