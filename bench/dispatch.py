"""Benchmark: drain the outbox through the real Twilio SMS driver over HTTP to the sandbox in another process.

Prints one JSON line: end-to-end send rate with statuses stored, the achieved rate under a configured
pace (and the 429s the sandbox saw), duplicates and losses counted at the sandbox, and a baseline:
the same number of bare HTTP sends to the sandbox without the outbox, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import func, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import child, free_port, wait_http
from bench._history import history
from domain.delivery.dispatch import Dispatcher
from domain.delivery.outbox import RetryPolicy
from domain.delivery.pacing import TokenBucket
from domain.vocabulary import Channel
from providers.twilio.driver import TwilioSmsDriver
from storage import migrate
from storage.database import Database
from storage.models import CustomerCommunication
from storage.unit_of_work import SqlUnitOfWork

SID, TOKEN, FROM = "AC00000000000000000000000000000000", "sandbox-twilio-auth-token", "+15005550006"


async def plan(database: Database, count: int, tag: str) -> None:
    now = datetime.now(UTC) - timedelta(seconds=1)
    rows = [
        {
            "channel": "sms",
            "provider": "twilio",
            "direction": "outbound",
            "source": "campaign",
            "source_ref": tag,
            "category": "marketing",
            "idempotency_key": f"campaign:{tag}:{i}:sms",
            "to_address": f"+4915{i:09d}",
            "body": f"Hello {i}, your spring offer is here.",
            "status": "planned",
            "next_attempt_at": now,
            "attempts": 0,
            "created_at": now,
        }
        for i in range(count)
    ]
    async with database.engine.begin() as connection:
        for start in range(0, count, 5000):
            await connection.execute(insert(CustomerCommunication), rows[start : start + 5000])


async def drain(database: Database, base_url: str, rate: float, concurrency: int) -> float:
    driver = TwilioSmsDriver(SID, TOKEN, FROM, base_url=base_url)
    dispatcher = Dispatcher(
        open_uow=lambda: SqlUnitOfWork(database),
        drivers={Channel.SMS: driver},
        pacing={Channel.SMS: TokenBucket(rate)},  # the product's default burst (50 ms of sends)
        worker_id="bench",
        policy=RetryPolicy(lease=timedelta(seconds=120), base_delay=timedelta(milliseconds=200)),
        concurrency=concurrency,
        batch_size=1000,
    )
    # The worker's own loop (a pipeline of claims, paced sends and grouped records), as `switchboard worker` runs it.
    stop = asyncio.Event()
    started = time.perf_counter()
    running = asyncio.create_task(dispatcher.run(stop, idle_sleep=0.02))
    try:
        while await waiting(database):  # until nothing is planned or in flight: retries after a 429 count too
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        await running
        await driver.close()
    return elapsed


async def count_partitions(database: Database) -> int:
    """The partitions `customer_communications` has (0 on SQLite, whose table is one)."""
    if database.engine.dialect.name != "postgresql":
        return 0
    async with database.sessions() as session:
        found = await session.scalar(
            text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'customer_communications'::regclass")
        )
    return int(found or 0)


async def waiting(database: Database) -> int:
    async with database.sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(CustomerCommunication)
                .where(CustomerCommunication.status.in_(["planned", "sending"]))
            )
            or 0
        )


async def queued(database: Database, tag: str) -> int:
    async with database.sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(CustomerCommunication)
                .where(CustomerCommunication.source_ref == tag, CustomerCommunication.status == "queued")
            )
            or 0
        )


async def sandbox_counts(base_url: str, tag: str) -> tuple[int, int, float]:
    """(duplicates, distinct keys accepted, acceptance rate per second) for one run, seen at the sandbox.

    The rate is the provider's view of the pacing: accepted messages over the time from the first
    acceptance to the last, without our start-up and the final drain check around them.
    """
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/_sandbox/messages?provider=twilio") as response:
            messages = (await response.json())["messages"]
    ours = [m for m in messages if str(m.get("idempotency_key", "")).startswith(f"campaign:{tag}:")]
    keys = [m.get("idempotency_key") for m in ours]
    moments = sorted(datetime.fromisoformat(m["created_at"]) for m in ours)
    span = (moments[-1] - moments[0]).total_seconds() if len(moments) > 1 else 0.0
    rate = (len(moments) - 1) / span if span > 0 else 0.0
    return len(keys) - len(set(keys)), len(set(keys)), rate


async def stats(base_url: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/_sandbox/stats") as response:
            data = await response.json()
    return data.get("totals", data)


async def baseline(base_url: str, count: int, concurrency: int) -> float:
    """Bare sends: the same HTTP requests with no outbox, database or driver around them."""
    url = f"{base_url}/2010-04-01/Accounts/{SID}/Messages.json"
    headers = {"Authorization": "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()}
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one(i: int) -> None:
            async with (
                gate,
                session.post(url, data={"To": f"+4916{i:09d}", "From": FROM, "Body": "baseline"}) as r,
            ):
                await r.read()

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return count / (time.perf_counter() - started)


async def main(quick: bool, database_url: str | None = None, months: int = 0) -> dict[str, object]:
    count, paced_count, paced_rate = (4000, 4000, 500.0) if quick else (20000, 7500, 500.0)
    port, smtp = free_port(), free_port()
    base_url = f"http://127.0.0.1:{port}"
    with (
        tempfile.TemporaryDirectory() as folder,
        child(
            [
                "-m",
                "api.sandbox",
                "--port",
                str(port),
                "--smtp-port",
                str(smtp),
                "--no-status-webhooks",
                "--rate-limit",
                str(paced_rate),
                # Providers state limits per second, so the sandbox allows one second's worth at once.
                "--rate-limit-burst",
                str(int(paced_rate)),
            ]
        ) as sandbox_process,
    ):
        wait_http(f"{base_url}/_sandbox/stats")
        url = database_url or f"sqlite+aiosqlite:///{Path(folder) / 'dispatch.db'}"
        if database_url:
            await migrate.downgrade(url, "base")  # a clean slate in the given (scratch) database
        await migrate.upgrade(url)
        database = Database.connect(url)
        await history(database, months)
        partitions = await count_partitions(database)
        # The unpaced run goes to a second sandbox without a rate limit, the paced one to the limited one.
        port2, smtp2 = free_port(), free_port()
        with child(
            ["-m", "api.sandbox", "--port", str(port2), "--smtp-port", str(smtp2), "--no-status-webhooks"]
        ):
            free_url = f"http://127.0.0.1:{port2}"
            wait_http(f"{free_url}/_sandbox/stats")
            base_rate = await baseline(free_url, min(count, 5000), 64)
            await plan(database, count, "full")
            elapsed = await drain(database, free_url, rate=1e6, concurrency=64)
            stored = await queued(database, "full")
            duplicates, distinct, _ = await sandbox_counts(free_url, "full")
        await plan(database, paced_count, "paced")
        paced_elapsed = await drain(database, base_url, rate=paced_rate, concurrency=64)
        paced_stored = await queued(database, "paced")
        paced_duplicates, paced_distinct, paced_at_provider = await sandbox_counts(base_url, "paced")
        totals = await stats(base_url)
        await database.dispose()
        assert sandbox_process.poll() is None
    return {
        "msgs_per_s": round(stored / elapsed, 1),
        "paced_target_per_s": paced_rate,
        # As the provider sees it (first acceptance to last); end to end adds our start and final drain.
        "paced_achieved_per_s": round(paced_at_provider, 1),
        "paced_end_to_end_per_s": round(paced_stored / paced_elapsed, 1),
        "provider_429s": int(totals.get("rate_limited_429s", 0)),
        "duplicates": duplicates + paced_duplicates,
        "lost": (count - distinct) + (paced_count - paced_distinct),
        "baseline_http_per_s": round(base_rate, 1),
        "ratio_to_baseline": round((stored / elapsed) / base_rate, 3),
        "messages": count,
        "paced_messages": paced_count,
        "database": url.split("+", 1)[0],
        "months_of_history": months,
        "message_partitions": partitions,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller run, under 60 s")
    parser.add_argument(
        "--database", help="a scratch postgresql+asyncpg:// URL (its tables are dropped first)"
    )
    parser.add_argument(
        "--months",
        type=int,
        default=0,
        help="months of history the database holds first (one month partition each on PostgreSQL)",
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.quick, args.database, args.months))))
