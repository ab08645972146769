"""KPI query benchmark: a 365-day daily KPI split by a dimension from rollups vs raw facts; one JSON line.

Run: .venv/bin/python bench/kpi_query.py [--quick | --full]

The default seeds 50,000 customers (~2.5M messages) on SQLite, --full the issue's 200,000 customers
(~10M messages), --quick 1,500 customers (under a minute). Seeding a large plan takes a long while,
so the seeded file is cached under /tmp, named after the plan, and copied per run: later runs skip it.
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
    "default": SeedPlan(customers=50_000, days=380, seed=42, end_date=END),
    "full": SeedPlan(customers=200_000, days=380, seed=42, end_date=END),
}
NEW_FACTS = 10_000
#: Incremental updates timed (median reported); each one follows a fresh batch of NEW_FACTS.
INCREMENTAL_ROUNDS = 3


async def seeded_copy(plan: SeedPlan, workdir: Path) -> Path:
    """A private copy of the seeded database, seeding the cached file first if it is missing."""
    cached = Path(tempfile.gettempdir()) / (
        f"switchboard-bench-kpi-{plan.customers}-{plan.days}-{plan.seed}-{plan.end_date:%Y%m%d}.db"
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


async def add_new_facts(database: Database, batch: int) -> tuple[datetime, datetime]:
    """Half new orders, half new messages, during one of the last seeded days (what a busy day adds).

    Batches land on the last INCREMENTAL_ROUNDS days in order, each on its own day, so every timed
    update does the same work instead of rescanning earlier batches too. Returns the [start, end)
    range they were written in: the writer knows it, so no per-id lookup is needed.
    """
    day = END - timedelta(days=INCREMENTAL_ROUNDS - 1 - batch)
    day_start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=6)
    async with database.sessions() as session:
        customer_ids = list(await session.scalars(select(Customer.id).order_by(Customer.id).limit(500)))
        orders = [
            Order(
                order_number=f"BENCH-{batch}-{i}", customer_id=customer_ids[i % len(customer_ids)], status="paid",
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
        return day_start, day_start + timedelta(seconds=5 * NEW_FACTS // 2)


async def main(mode: str) -> dict[str, object]:
    plan = PLANS[mode]
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
            pair_ms = await timed(from_rollups, 11)
            # The target is per KPI query, so each query is timed on its own.
            rollup_ms = [
                ms
                for query in queries
                for ms in await timed(lambda q=query: run_query(database, q, now=NOW, business_tz=TZ), 21)
            ]
            raw_ms = [
                ms
                for query in queries
                for ms in await timed(
                    lambda q=query: run_query(database, q, now=NOW, business_tz=TZ, prefer_rollups=False),
                    3 if mode == "quick" else 2,
                )
            ]

            incremental_ms = []
            for batch in range(INCREMENTAL_ROUNDS):  # each round adds its own 10,000 facts
                written = await add_new_facts(database, batch)
                started = time.perf_counter()
                ranges = {"orders": [written], "messages": [written]}
                await update_rollups_for(database, await TouchedFacts.from_ranges(database, ranges))
                incremental_ms.append((time.perf_counter() - started) * 1000)
            facts["new_facts"] = NEW_FACTS
        finally:
            await database.dispose()
    p50, raw_p50 = statistics.median(rollup_ms), statistics.median(raw_ms)
    return {
        "mode": mode,
        "query": "365-day daily revenue by source_channel + messages_sent by channel",
        "p50_ms": round(p50, 2),
        "both_queries_p50_ms": round(statistics.median(pair_ms), 2),
        "raw_p50_ms": round(raw_p50, 2),
        "speedup": round(raw_p50 / p50, 1),
        "incremental_update_ms": round(statistics.median(incremental_ms), 1),
        "incremental_runs_ms": [round(ms, 1) for ms in incremental_ms],
        "rebuild_ms": round(rebuild_ms, 1),
        "facts": facts,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="1,500 customers, finishes in well under a minute")
    size.add_argument("--full", action="store_true", help="the issue's 200,000 customers (~10M messages)")
    arguments = parser.parse_args()
    mode = "quick" if arguments.quick else "full" if arguments.full else "default"
    print(json.dumps(asyncio.run(main(mode))))
