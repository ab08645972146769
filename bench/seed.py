"""Seeder throughput benchmark: seed a fresh, migrated SQLite file and print one JSON line.

Run: .venv/bin/python bench/seed.py [--customers N] [--days D] [--quick] [--postgres URL]

Default 20,000 customers x 365 days; --quick seeds 3,000 x 365 (well under a minute). Only the
seeding is timed (the migration runs first); peak RSS is the process high-water mark (VmHWM);
cpu_seconds (all threads) is steadier than wall time on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import date
from pathlib import Path

from storage import migrate
from storage.database import Database
from storage.seeding import SeedPlan, seed_database

END = date(2025, 6, 30)


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def _run(customers: int, days: int, seed: int, postgres: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        url = postgres or f"sqlite+aiosqlite:///{Path(directory) / 'seed.db'}"
        await migrate.upgrade(url)
        database = Database.connect(url)
        try:
            started, cpu_started = time.perf_counter(), time.process_time()
            summary = await seed_database(
                database, SeedPlan(customers, days, seed, END), force=postgres is not None
            )
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
        finally:
            await database.dispose()
    rows = sum(summary.counts.values())
    return {
        "rows": rows,
        "seconds": round(elapsed, 2),
        "rows_per_s": round(rows / elapsed),
        "peak_rss_mb": _peak_rss_mb(),
        # CPU seconds of this process (all threads): steadier than wall time on a shared machine.
        "cpu_seconds": round(cpu, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3,000 customers x 365 days")
    parser.add_argument("--postgres", metavar="URL", help="seed this (migrated, wiped) PostgreSQL database")
    args = parser.parse_args()
    customers, days = (3000, 365) if args.quick else (args.customers, args.days)
    print(json.dumps(asyncio.run(_run(customers, days, args.seed, args.postgres))))


if __name__ == "__main__":
    main()
