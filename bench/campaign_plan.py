"""Campaign planning benchmark: audience query, consent, render and outbox insert against a raw insert.

Generates (once, cached under /tmp) a SQLite database of customers with a few percent opted out, plans a
campaign to all of them through the real use-case, and inserts the same number of prebuilt outbox rows
as a baseline. Prints one JSON line.

Run: .venv/bin/python bench/campaign_plan.py [--quick] [--customers N] [--batch-size N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from domain.campaigns.model import CampaignDraft
from domain.campaigns.use_cases import create_campaign, launch_campaign, plan_campaign
from domain.vocabulary import Channel
from storage import migrate
from storage.campaigns import SqlCampaignUnitOfWork
from storage.database import Database
from storage.models import ConsentRecord, Customer, CustomerConsent, CustomerTag, MessageTemplate
from storage.outbox_insert import (
    COLUMNS,
    OUTBOX,
    postgres_insert_records,
    sqlite_insert_records,
    sqlite_timestamp,
)
from storage.sql import table_of

CACHE = Path(tempfile.gettempdir()) / "switchboard-bench"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
FIRST = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Elif",
    "Felix",
    "Greta",
    "Hannah",
    "Ivan",
    "Jonas",
    "Kira",
    "Lukas",
    "Mia",
    "Noah",
    "Olga",
    "Paul",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Ugo",
    "Vera",
    "Wim",
    "Yara",
    "Zoe",
]
LAST = ["Müller", "Schmidt", "Smith", "Jones", "Rossi", "Novak", "Garcia", "Tanaka", "Silva", "Kowalski"]
ZONES = ["Europe/Berlin", "Europe/Vienna", "Europe/Zurich", "Europe/London", "America/New_York", "UTC"]
CHUNK = 50_000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """Samples VmRSS in a thread; RSS (not Python allocations) is what the machine pays for."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.start = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self.start = self.peak = rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def customer_rows(first_id: int, count: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for customer_id in range(first_id, first_id + count):
        has_phone = rng.random() < 0.9
        rows.append(
            {
                "id": customer_id,
                "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "phone_e164": f"+4915{customer_id:09d}" if has_phone else None,
                "email": f"c{customer_id}@example.com" if not has_phone or rng.random() < 0.8 else None,
                "timezone": rng.choice(ZONES),
                "locale": "en",
                "segment": "vip" if rng.random() < 0.1 else "standard",
                "created_at": NOW - timedelta(days=rng.randint(1, 1000)),
                "updated_at": NOW,
            }
        )
    return rows


async def build_base(path: Path, customers: int) -> None:
    """The cached SQLite database: migrated schema, templates, customers, tags and a few percent opt-outs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    await load_base(f"sqlite+aiosqlite:///{partial}", customers)
    partial.rename(path)


async def load_base(url: str, customers: int) -> None:
    await migrate.upgrade(url)
    database = Database.connect(url)
    rng = random.Random(42)
    async with database.engine.begin() as connection:
        await connection.execute(insert(table_of(MessageTemplate)), templates())
        for first in range(1, customers + 1, CHUNK):
            count = min(CHUNK, customers + 1 - first)
            rows = customer_rows(first, count, rng)
            await connection.execute(insert(table_of(Customer)), rows)
            tags = [{"customer_id": r["id"], "tag": "newsletter"} for r in rows if rng.random() < 0.3]
            await connection.execute(insert(table_of(CustomerTag)), tags)
        opted = sorted(rng.sample(range(1, customers + 1), customers * 3 // 100))
        records = [
            {
                "id": n,
                "customer_id": c,
                "channel": rng.choice(["whatsapp", "sms"]),
                "status": "opted_out",
                "source": "SMS keyword STOP",
                "recorded_at": NOW - timedelta(days=3),
            }
            for n, c in enumerate(opted, start=1)
        ]
        for start in range(0, len(records), CHUNK):
            await connection.execute(insert(table_of(ConsentRecord)), records[start : start + CHUNK])
        consents = [
            {
                "customer_id": r["customer_id"],
                "channel": r["channel"],
                "status": "opted_out",
                "source": r["source"],
                "record_id": r["id"],
                "changed_at": r["recorded_at"],
            }
            for r in records
        ]
        for start in range(0, len(consents), CHUNK):
            await connection.execute(insert(table_of(CustomerConsent)), consents[start : start + CHUNK])
    await database.dispose()


def templates() -> list[dict[str, Any]]:
    common = {
        "name": "bench_promo",
        "locale": "en",
        "category": "marketing",
        "status": "active",
        "version": 1,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return [
        {
            **common,
            "channel": "whatsapp",
            "body": "Hi {{ first_name }}, {{ offer }}.",
            "variables": ["first_name", "offer"],
            "whatsapp_name": "bench_promo",
            "whatsapp_language": "en",
            "whatsapp_params": ["first_name"],
            "subject": None,
            "html_body": None,
        },
        {
            **common,
            "channel": "sms",
            "body": "Hi {{ first_name }}, {{ offer }}. Reply STOP to opt out.",
            "variables": ["first_name", "offer"],
            "whatsapp_name": None,
            "whatsapp_language": None,
            "whatsapp_params": [],
            "subject": None,
            "html_body": None,
        },
        {
            **common,
            "channel": "email",
            "subject": "{{ offer }}",
            "body": "Dear {{ name }}, {{ offer }}.",
            "variables": ["name", "offer"],
            "whatsapp_name": None,
            "whatsapp_language": None,
            "whatsapp_params": [],
            "html_body": None,
        },
    ]


async def plan_everyone(url: str, batch_size: int) -> tuple[int, float, float, float]:
    database = Database.connect(url)
    draft = CampaignDraft(
        slug="bench",
        name="Bench",
        template_name="bench_promo",
        channel_order=(Channel.WHATSAPP, Channel.SMS, Channel.EMAIL),
        audience={"campaign_type": "promotion"},
        variables={"offer": "20% off all lenses this week"},
    )
    campaign = await create_campaign(SqlCampaignUnitOfWork(database), draft, NOW)
    await launch_campaign(SqlCampaignUnitOfWork(database), campaign.id, NOW)
    with PeakRss() as rss:
        started, cpu_started = time.perf_counter(), time.process_time()
        progress = await plan_campaign(
            lambda: SqlCampaignUnitOfWork(database),
            campaign.id,
            batch_size,
            now=lambda: NOW,
            read_uow_factory=lambda: SqlCampaignUnitOfWork(database, read_only=True),
        )
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    async with database.engine.connect() as connection:
        rows = await connection.scalar(select(func.count()).select_from(OUTBOX))
    await database.dispose()
    assert rows == progress.total_planned + progress.total_excluded
    return int(rows or 0), elapsed, cpu, rss.peak - rss.start


async def baseline_insert(url: str, count: int, batch_size: int) -> tuple[float, float]:
    """The same number of outbox rows, built beforehand as driver tuples, inserted the way planning inserts
    them (the same statements, in transactions of the same size): the floor for the insert alone."""
    database = Database.connect(url)
    stamp: object = NOW if database.engine.dialect.name == "postgresql" else sqlite_timestamp(NOW)
    spent = cpu = 0.0
    for first in range(0, count, batch_size):
        row = {
            "channel": "sms",
            "provider": "twilio",
            "direction": "outbound",
            "source": "campaign",
            "source_ref": "0",
            "category": "marketing",
            "body": "Hi Anna, 20% off all lenses this week.",
            "status": "planned",
            "next_attempt_at": stamp,
            "segments": 1,
            "encoding": "GSM-7",
            "cost_micros": 7900,
            "currency": "USD",
            "attempts": 0,
            "created_at": stamp,
        }
        records = [
            tuple(
                {**row, "idempotency_key": f"baseline:{n}", "to_address": f"+4915{n:09d}"}.get(c)
                for c in COLUMNS
            )
            for n in range(first, min(first + batch_size, count))
        ]
        started, cpu_started = time.perf_counter(), time.process_time()
        async with database.engine.begin() as connection:
            if database.engine.dialect.name == "postgresql":
                await postgres_insert_records(connection, records)
            else:
                raw = await connection.get_raw_connection()
                await sqlite_insert_records(raw.driver_connection, records)
        spent += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
    await database.dispose()
    return count / spent, count / cpu


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 recipients instead of 1,000,000")
    parser.add_argument("--customers", type=int)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument(
        "--database",
        help="a scratch postgresql+asyncpg:// URL (its tables are dropped first); default SQLite",
    )
    args = parser.parse_args()
    customers = args.customers or (100_000 if args.quick else 1_000_000)
    if args.database:
        await migrate.downgrade(args.database, "base")
        await load_base(args.database, customers)
        rows, elapsed, cpu, growth = await plan_everyone(args.database, args.batch_size)
        await empty_outbox(args.database)
        baseline, baseline_cpu = await baseline_insert(args.database, rows, args.batch_size)
    else:
        rows, elapsed, cpu, growth, baseline, baseline_cpu = await on_sqlite(customers, args.batch_size)
    per_second = rows / elapsed
    print(
        json.dumps(
            {
                "recipients": rows,
                "recipients_per_s": round(per_second),
                "baseline_insert_rows_per_s": round(baseline),
                "ratio": round(per_second / baseline, 3),
                "peak_rss_growth_mb": round(growth, 1),
                "batch_size": args.batch_size,
                # The machine is shared: per CPU-second figures are steadier than wall-clock ones.
                "recipients_per_cpu_s": round(rows / cpu),
                "baseline_rows_per_cpu_s": round(baseline_cpu),
                "load_average_1m": os.getloadavg()[0],
                "database": (args.database or "sqlite").split(":", 1)[0],
            }
        )
    )


async def on_sqlite(customers: int, batch_size: int) -> tuple[int, float, float, float, float, float]:
    """Planning and the baseline each on a fresh copy of the cached customer database."""
    base = CACHE / f"customers-{customers}.db"
    if not base.exists():
        await build_base(base, customers)
    work, floor = CACHE / f"run-{customers}.db", CACHE / f"baseline-{customers}.db"
    for copy in (work, floor):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(base, copy)
    try:
        rows, elapsed, cpu, growth = await plan_everyone(f"sqlite+aiosqlite:///{work}", batch_size)
        baseline, baseline_cpu = await baseline_insert(f"sqlite+aiosqlite:///{floor}", rows, batch_size)
    finally:
        for copy in (work, floor):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)
    return rows, elapsed, cpu, growth, baseline, baseline_cpu


async def empty_outbox(url: str) -> None:
    """PostgreSQL has no file to copy: the baseline starts from the same empty outbox instead."""
    database = Database.connect(url)
    async with database.engine.begin() as connection:
        await connection.exec_driver_sql(f"TRUNCATE {OUTBOX.name} CASCADE")
    await database.dispose()


if __name__ == "__main__":
    asyncio.run(main())
