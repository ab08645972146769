"""KPI query benchmark: a 365-day daily KPI split by a dimension from rollups vs raw facts; one JSON line.

Run: .venv/bin/python bench/kpi_query.py [--quick]

Full mode seeds ~200,000 customers on SQLite (several minutes; the seeded file is cached under
/tmp and copied per run, so later runs start at once). --quick seeds a small history.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from reports.periods import PeriodSpec
from reports.query import MetricQuery, run_query
from reports.rollups import TouchedFacts, rebuild_rollups, update_rollups_for
from storage import migrate
from storage.database import Database
from storage.models import Customer, CustomerCommunication, Order
from storage.seeding import SeedPlan, seed_database

TZ = "Europe/Berlin"
END = date(2026, 11, 30)
NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)
PLANS = {
    "quick": SeedPlan(customers=1500, days=380, seed=42, end_date=END),
    "full": SeedPlan(customers=200_000, days=730, seed=42, end_date=END),
}
NEW_FACTS = 10_000


async def seeded_copy(plan: SeedPlan, workdir: Path) -> Path:
    """A private copy of the seeded database, seeding the cached file first if it is missing."""
    cached = (
        Path(tempfile.gettempdir()) / f"switchboard-bench-kpi-{plan.customers}-{plan.days}-{plan.seed}.db"
    )
    if not cached.exists():
        building = cached.with_suffix(".building")
        building.unlink(missing_ok=True)
        url = f"sqlite+aiosqlite:///{building}"
        await migrate.upgrade(url)
        database = Database.connect(url)
        await seed_database(database, plan)
        await database.dispose()
        building.rename(cached)
    target = workdir / "kpi.db"
    shutil.copy(cached, target)
    return target


async def timed(action: object, repeats: int) -> list[float]:
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        await action()  # type: ignore[operator]
        durations.append((time.perf_counter() - started) * 1000)
    return durations


async def add_new_facts(database: Database) -> tuple[list[int], list[int]]:
    """Half new orders, half new messages, during the last seeded day (what a busy day adds)."""
    day_start = datetime.combine(END, datetime.min.time(), UTC) + timedelta(hours=6)
    async with database.sessions() as session:
        customer_ids = list(await session.scalars(select(Customer.id).order_by(Customer.id).limit(500)))
        orders = [
            Order(
                order_number=f"BENCH-{i}", customer_id=customer_ids[i % len(customer_ids)], status="paid",
                source_channel="web", amount_minor=2500 + i % 700, currency="EUR",
                created_at=day_start + timedelta(seconds=5 * i),
            )
            for i in range(NEW_FACTS // 2)
        ]  # fmt: skip
        messages = [
            CustomerCommunication(
                customer_id=customer_ids[i % len(customer_ids)], channel="sms", provider="twilio",
                direction="outbound", source="manual", to_address="+4915100000000", body="bench",
                status="delivered", cost_micros=7500, currency="EUR", created_at=day_start + timedelta(seconds=5 * i),
            )
            for i in range(NEW_FACTS // 2)
        ]  # fmt: skip
        session.add_all([*orders, *messages])
        await session.commit()
        return [o.id for o in orders], [m.id for m in messages]


async def main(quick: bool) -> dict[str, object]:
    plan = PLANS["quick" if quick else "full"]
    with tempfile.TemporaryDirectory() as workdir:
        path = await seeded_copy(plan, Path(workdir))
        database = Database.connect(f"sqlite+aiosqlite:///{path}")
        try:
            async with database.read_sessions() as session:
                facts = {
                    "customers": await session.scalar(select(func.count()).select_from(Customer)),
                    "orders": await session.scalar(select(func.count()).select_from(Order)),
                    "messages": await session.scalar(select(func.count()).select_from(CustomerCommunication)),
                }
            started = time.perf_counter()
            await rebuild_rollups(database, grains=("day",), business_tz=TZ)
            rebuild_ms = (time.perf_counter() - started) * 1000

            period = PeriodSpec.between(END - timedelta(days=364), END)
            queries = [
                MetricQuery(("revenue",), period, grain="day", dimensions=("source_channel",)),
                MetricQuery(("messages_sent",), period, grain="day", dimensions=("channel",)),
            ]

            async def from_rollups() -> None:
                for query in queries:
                    result = await run_query(database, query, now=NOW, business_tz=TZ)
                    assert result.source == "rollup"

            async def from_raw() -> None:
                for query in queries:
                    await run_query(database, query, now=NOW, business_tz=TZ, prefer_rollups=False)

            await from_rollups()  # warm caches and compiled statements alike for both paths
            rollup_ms = await timed(from_rollups, 21)
            raw_ms = await timed(from_raw, 3 if not quick else 5)

            order_ids, message_ids = await add_new_facts(database)
            started = time.perf_counter()
            touched = await TouchedFacts.from_ids(database, orders=order_ids, messages=message_ids)
            await update_rollups_for(database, touched)
            incremental_ms = (time.perf_counter() - started) * 1000
            facts["new_facts"] = NEW_FACTS
        finally:
            await database.dispose()
    p50, raw_p50 = statistics.median(rollup_ms), statistics.median(raw_ms)
    return {
        "mode": "quick" if quick else "full",
        "query": "365-day daily revenue by source_channel + messages_sent by channel",
        "p50_ms": round(p50, 2),
        "raw_p50_ms": round(raw_p50, 2),
        "speedup": round(raw_p50 / p50, 1),
        "incremental_update_ms": round(incremental_ms, 1),
        "rebuild_ms": round(rebuild_ms, 1),
        "facts": facts,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small seed, finishes in well under a minute")
    arguments = parser.parse_args()
    print(json.dumps(asyncio.run(main(arguments.quick))))
