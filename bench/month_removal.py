"""Benchmark: removing an old month of messages on PostgreSQL, and how long sending and reading wait for it.

Fills one month 13 months back with N delivered SMS (each with its status history, send-once key and
provider id, as the workers leave them) in a fresh PostgreSQL database, then runs the retention removal
(`storage.partitions.drop_old_messages`, as a worker's pass does) while one task claims due messages every
20 ms (the worker's claim reads every month), another looks a message up by id and a third reads a
customer (as dashboard pages do; the messages refer to the customers).

Prints one JSON line:
- `removal_s`: the removal, from start to commit;
- `sends_held_s`, `reads_held_s` and `customer_reads_held_s`: the longest claim, lookup of a message and
  read of a customer while it ran (what a worker and dashboard pages waited);
- `claim_ms`, `read_ms` and `customer_read_ms`: their medians before it (the same run's baseline);
- `sum_once_s`: PostgreSQL summing the month's daily figures once, which any removal must do (baseline).

    python bench/month_removal.py [--quick] [--messages N] [--admin-url postgresql+asyncpg://…/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import and_, insert, select, text
from sqlalchemy.exc import DBAPIError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage import migrate
from storage.database import Database
from storage.message_feed import set_aside_figures
from storage.message_months import month_of
from storage.models import Customer, CustomerCommunication
from storage.outbox import SqlOutbox
from storage.partitions import drop_old_messages, keep_month_partitions

ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
RETENTION_MONTHS = 12


async def admin(url: str, statement: str) -> None:
    database = Database.connect(url)
    try:
        async with database.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(statement))
    finally:
        await database.dispose()


async def fill(database: Database, month: datetime, count: int) -> None:
    """`count` delivered SMS spread over `month`, with their history and keys, in the month's partition."""
    one = {"at": month + timedelta(days=1)}
    async with database.engine.begin() as connection:
        await connection.execute(insert(Customer).values(id=1, name="Ada Neu", phone_e164="+4915199990000"))
    async with database.engine.begin() as connection:  # makes the month's partition (and moves this row in)
        await connection.execute(
            text(
                "INSERT INTO customer_communications (channel, provider, direction, source, category, "
                "to_address, body, status, attempts, counted, created_at) VALUES ('sms', 'twilio', 'outbound', "
                "'campaign', 'marketing', '+491510000000', 'x', 'delivered', 1, 0, :at)"
            ),
            one,
        )
    await keep_month_partitions(database, datetime.now(UTC))
    partition = f"customer_communications_{month:%Y_%m}"
    async with database.engine.begin() as connection:
        # Keys written set-based below, as the campaign planner writes them (the row trigger off meanwhile).
        await connection.execute(text("SELECT set_config('switchboard.message_keys', 'off', true)"))
        await connection.execute(
            text(
                "INSERT INTO customer_communications (channel, provider, direction, source, source_ref, category, "
                "idempotency_key, provider_message_id, to_address, body, status, attempts, counted, segments, "
                "encoding, cost_micros, currency, created_at, sent_at, delivered_at) "
                "SELECT 'sms', 'twilio', 'outbound', 'campaign', 'bench', 'marketing', "
                "'campaign:bench:' || g || chr(58) || 'sms', 'SM' || md5(g::text), '+4915' || lpad(g::text, 9, '0'), "
                "'Hello, your spring check-up is due.', 'delivered', 1, 1, 1, 'gsm7', 7900, 'EUR', t, "
                "t + interval '1 second', t + interval '5 seconds' "
                "FROM generate_series(1, :n) g, "
                "LATERAL (SELECT CAST(:start AS timestamptz) + (g % 27) * interval '1 day' "
                "+ (g % 86000) * interval '1 second' AS t) at"
            ),
            {"n": count, "start": month},
        )
        await connection.execute(
            text(
                "INSERT INTO communication_idempotency_keys SELECT idempotency_key, created_at FROM "
                f"{partition} WHERE idempotency_key IS NOT NULL"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO communication_provider_ids SELECT provider, provider_message_id, created_at FROM "
                f"{partition} WHERE provider_message_id IS NOT NULL"
            )
        )
        for status, column in (("sent", "sent_at"), ("delivered", "delivered_at")):
            await connection.execute(
                text(
                    "INSERT INTO message_status_events (communication_id, message_created_at, status, source, "
                    f"occurred_at) SELECT id, created_at, '{status}', 'twilio', {column} FROM {partition} "
                    f"WHERE {column} IS NOT NULL"
                )
            )
    async with database.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE"))


async def sum_once(database: Database, month: datetime) -> float:
    cc = CustomerCommunication
    async with database.engine.connect() as connection:
        started = time.perf_counter()
        await set_aside_figures(
            connection,
            ZoneInfo("Europe/Berlin"),
            and_(cc.created_at >= month, cc.created_at < month_of(month, 1)),
        )
        elapsed = time.perf_counter() - started
        await connection.rollback()
    return elapsed


async def claims(database: Database, stop: asyncio.Event, seen: list[float]) -> None:
    """A worker's claim every 20 ms (nothing is due: what is timed is what the claim waits for)."""
    while not stop.is_set():
        started = time.perf_counter()
        async with database.sessions() as session:
            await SqlOutbox(session).claim_due("bench", datetime.now(UTC), 100, timedelta(minutes=2))
            await session.commit()
        seen.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)


async def reads(database: Database, stop: asyncio.Event, seen: list[float], message_id: int) -> None:
    """The dashboard's lookup of one message by id every 20 ms."""
    cc = CustomerCommunication
    while not stop.is_set():
        started = time.perf_counter()
        async with database.sessions() as session:
            await session.execute(select(cc.status, cc.body).where(cc.id == message_id))
        seen.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)


async def customers(database: Database, stop: asyncio.Event, seen: list[float]) -> None:
    """A page's read of a customer every 20 ms (the messages refer to the customers: detaching and dropping a
    month with foreign keys locks them)."""
    while not stop.is_set():
        started = time.perf_counter()
        async with database.sessions() as session:
            await session.execute(select(Customer.name).where(Customer.id == 1))
        seen.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)


async def watch(
    database: Database, seconds: float | None, work: object = None
) -> tuple[list[float], list[float], list[float]]:
    """Claims, lookups and customer reads alongside `work` (a coroutine), or for `seconds`."""
    stop = asyncio.Event()
    claimed: list[float] = []
    read: list[float] = []
    people: list[float] = []
    async with database.sessions() as session:
        recent = await session.scalar(
            select(CustomerCommunication.id).order_by(CustomerCommunication.id.desc())
        )
    tasks = [
        asyncio.create_task(claims(database, stop, claimed)),
        asyncio.create_task(reads(database, stop, read, int(recent or 1))),
        asyncio.create_task(customers(database, stop, people)),
    ]
    try:
        await asyncio.sleep(0.2)
        if work is not None:
            await work  # type: ignore[misc]
        else:
            await asyncio.sleep(seconds or 1.0)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return claimed, read, people


async def main(count: int, admin_url: str) -> dict[str, object]:
    name = f"sb_bench_months_{uuid.uuid4().hex[:8]}"
    try:
        await admin(admin_url, f'CREATE DATABASE "{name}"')
    except (OSError, DBAPIError) as error:
        raise SystemExit(f"month_removal needs PostgreSQL: {admin_url} did not answer ({error})") from None
    url = f"{admin_url.rsplit('/', 1)[0]}/{name}"
    try:
        await migrate.upgrade(url)
        database = Database.connect(url)
        try:
            now = datetime.now(UTC)
            old = month_of(now, -(RETENTION_MONTHS + 1))
            started = time.perf_counter()
            await fill(database, old, count)
            filled_s = time.perf_counter() - started
            # Something recent to send and look up, in this month's partition.
            async with database.engine.begin() as connection:
                await connection.execute(
                    text(
                        "INSERT INTO customer_communications (channel, provider, direction, source, category, "
                        "to_address, body, status, attempts, counted, created_at) VALUES ('sms', 'twilio', "
                        "'outbound', 'manual', 'transactional', '+491510000001', 'y', 'delivered', 1, 0, now())"
                    )
                )
            sums = [await sum_once(database, old) for _ in range(3)]
            claimed, read, people = await watch(database, 2.0)
            timing: dict[str, float] = {}

            async def remove() -> None:
                begun = time.perf_counter()
                dropped = await drop_old_messages(
                    database, RETENTION_MONTHS, now, business_tz="Europe/Berlin"
                )
                timing["removal_s"] = time.perf_counter() - begun
                timing["removed"] = dropped.messages

            held_claims, held_reads, held_people = await watch(database, None, remove())
        finally:
            await database.dispose()
    finally:
        await admin(admin_url, f'DROP DATABASE "{name}" WITH (FORCE)')
    return {
        "benchmark": "month_removal",
        "messages": count,
        "removed": int(timing["removed"]),
        "removal_s": round(timing["removal_s"], 3),
        "sends_held_s": round(max(held_claims), 3),
        "reads_held_s": round(max(held_reads), 3),
        "customer_reads_held_s": round(max(held_people), 3),
        "claim_ms": round(statistics.median(claimed) * 1000, 2),
        "read_ms": round(statistics.median(read) * 1000, 2),
        "customer_read_ms": round(statistics.median(people) * 1000, 2),
        "sum_once_s": round(statistics.median(sums), 3),
        "fill_s": round(filled_s, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="200,000 messages instead of 1,000,000 (under 60 s)"
    )
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument(
        "--admin-url", default=ADMIN_URL, help="a PostgreSQL database to create the bench's in"
    )
    args = parser.parse_args()
    n = args.messages or (200_000 if args.quick else 1_000_000)
    print(json.dumps(asyncio.run(main(n, args.admin_url))))
