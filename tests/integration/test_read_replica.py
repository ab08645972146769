"""With SWITCHBOARD_DATABASE_READ_URL, KPI answers and insights read the replica; every write, and every read
that must see it, stays on the primary."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from reports.periods import PeriodSpec
from reports.query import MetricQuery, run_query
from storage.database import Database
from storage.models import Customer
from storage.seeding import SeedPlan, seed_database
from switchboard.settings import Settings
from switchboard.wiring import build_container
from tests.conftest import FreshDatabases

pytestmark = pytest.mark.postgres
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
QUERY = MetricQuery(("active_customers", "orders"), PeriodSpec.last_n_days(30))


async def customers_in(url: str) -> int:
    database = Database.connect(url)
    try:
        async with database.read_sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(Customer)) or 0)
    finally:
        await database.dispose()


def test_kpi_answers_read_the_replica_and_writes_go_to_the_primary(fresh_databases: FreshDatabases) -> None:
    primary, replica = fresh_databases.url("postgresql"), fresh_databases.url("postgresql")

    async def scenario() -> None:
        # The replica holds the business's history; the primary (as a stand-in) holds none, so any figure
        # that is not zero was read from the replica.
        seeding = Database.connect(replica)
        await seed_database(seeding, SeedPlan(customers=80, days=40, seed=2, end_date=date(2026, 11, 30)))
        expected = await run_query(seeding, QUERY, now=NOW, business_tz="Europe/Berlin")
        await seeding.dispose()

        database = Database.connect(primary, read_url=replica)
        try:
            answered = await run_query(database, QUERY, now=NOW, business_tz="Europe/Berlin")
            assert [s.total for s in answered.series] == [s.total for s in expected.series]
            assert all(s.total for s in answered.series)
            async with database.sessions() as session:
                session.add(Customer(name="Written to the primary"))
                await session.commit()
            async with database.read_sessions() as session:  # read-your-writes stays on the primary
                assert await session.scalar(select(func.count()).select_from(Customer)) == 1
        finally:
            await database.dispose()
        assert await customers_in(primary) == 1 and await customers_in(replica) == 80

    asyncio.run(scenario())


def test_the_app_and_the_commands_are_wired_to_the_replica(fresh_databases: FreshDatabases) -> None:
    primary, replica = fresh_databases.url("postgresql"), fresh_databases.url("postgresql")
    settings = Settings(database_url=primary, database_read_url=replica)  # type: ignore[call-arg]
    container = build_container(settings)
    try:
        database = container.database
        assert database.replica_engine is not None
        assert database.replica_engine.url.database == replica.rsplit("/", 1)[1]
        assert database.engine.url.database == primary.rsplit("/", 1)[1]
        assert database.analytics_sessions is not database.read_sessions
    finally:
        asyncio.run(container.close())
    without = Database.connect(primary)
    assert without.analytics_sessions is without.read_sessions and without.replica_engine is None
    asyncio.run(without.dispose())
