"""Benchmark: signed Twilio status callbacks and WhatsApp status webhooks against `switchboard serve` in another process.

64 requests in flight. Prints one JSON line: requests per second, p99 latency, the same server's bare
`/healthz` rate measured in the same run as the baseline, and whether every status was applied exactly
once (5% of the deliveries are sent twice, as providers do when they retry).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from sqlalchemy import func, insert, select
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import child, free_port, percentile, wait_http
from bench._history import history
from storage import migrate
from storage.database import Database
from storage.models import CommunicationAnalytics, CustomerCommunication, MessageStatusEvent

TWILIO_TOKEN, APP_SECRET, SID = "bench-twilio-token", "bench-app-secret", "AC00000000000000000000000000000000"
CONCURRENCY = 64


async def plan(database: Database, count: int) -> dict[str, int]:
    """`count` sent SMS and WhatsApp messages awaiting their receipts; each one's id by the provider's id."""
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        for channel, provider, pid, status in (
            ("sms", "twilio", f"SM{i:032x}", "queued"),
            ("whatsapp", "whatsapp_cloud", f"wamid.bench{i}", "sent"),
        ):
            rows.append(
                {
                    "channel": channel,
                    "provider": provider,
                    "direction": "outbound",
                    "source": "campaign",
                    "source_ref": "bench",
                    "category": "marketing",
                    "idempotency_key": f"{channel}:{i}",
                    "to_address": f"+4915{i:09d}",
                    "body": "x",
                    "status": status,
                    "attempts": 1,
                    "provider_message_id": pid,
                    "created_at": now,
                    "sent_at": now,
                }
            )
    async with database.engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            await connection.execute(insert(CustomerCommunication), rows[start : start + 5000])
        ids = await connection.execute(
            select(CustomerCommunication.provider_message_id, CustomerCommunication.id).where(
                CustomerCommunication.source_ref == "bench"
            )
        )
        return {pid: message_id for pid, message_id in ids if pid is not None}


def twilio_request(
    base: str, i: int, validator: RequestValidator, ours: int
) -> tuple[str, bytes, dict[str, str]]:
    url = f"{base}/webhooks/twilio/status?mid={ours}"  # the StatusCallback URL the driver gives Twilio
    params = {
        "MessageSid": f"SM{i:032x}",
        "MessageStatus": "delivered",
        "AccountSid": SID,
        "From": "+15005550006",
        "To": f"+4915{i:09d}",
        "ApiVersion": "2010-04-01",
    }
    body = "&".join(f"{k}={aiohttp.helpers.quote(v, safe='')}" for k, v in params.items()).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": validator.compute_signature(url, params),
    }
    return url, body, headers


def whatsapp_request(base: str, i: int, ours: int) -> tuple[str, bytes, dict[str, str]]:
    status = {
        "id": f"wamid.bench{i}",
        "biz_opaque_callback_data": str(ours),  # as the driver sends it
        "status": "delivered",
        "timestamp": str(int(time.time())),
        "recipient_id": f"4915{i:09d}",
    }
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922",
                            },
                            "statuses": [status],
                        },
                    }
                ],
            }
        ],
    }
    body = json.dumps(envelope).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return (
        f"{base}/webhooks/whatsapp",
        body,
        {"Content-Type": "application/json", "X-Hub-Signature-256": signature},
    )


async def fire(requests: list[tuple[str, bytes, dict[str, str]]]) -> tuple[float, list[float], int]:
    gate = asyncio.Semaphore(CONCURRENCY)
    latencies: list[float] = []
    failures = 0
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(request: tuple[str, bytes, dict[str, str]]) -> None:
            nonlocal failures
            url, body, headers = request
            async with gate:
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    failures += response.status >= 300
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(one(r) for r in requests))
        return len(requests) / (time.perf_counter() - started), latencies, failures


async def baseline(base: str, count: int) -> float:
    gate = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def one() -> None:
            async with gate, session.get(f"{base}/healthz") as response:
                await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - started)


async def main(
    quick: bool, database_url: str | None, web_processes: int, months: int = 0
) -> dict[str, object]:
    count = 2000 if quick else 20000
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        url = database_url or f"sqlite+aiosqlite:///{Path(folder) / 'webhooks.db'}"
        if database_url:
            await migrate.downgrade(url, "base")  # a clean slate in the given (scratch) database
        await migrate.upgrade(url)
        database = Database.connect(url)
        await history(database, months)
        ids = await plan(database, count)
        env = {
            "SWITCHBOARD_DATABASE_URL": url,
            "SWITCHBOARD_PUBLIC_URL": base,
            "SWITCHBOARD_SANDBOX": "0",
            "SWITCHBOARD_WORKER_IN_PROCESS": "0",
            "SWITCHBOARD_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "SWITCHBOARD_WHATSAPP_APP_SECRET": APP_SECRET,
        }
        with child(
            ["-m", "switchboard.cli", "serve", "--port", str(port), "--workers", str(web_processes)], env
        ):
            wait_http(f"{base}/healthz")
            await baseline(base, 500)  # warm up
            base_rate = await baseline(base, min(count, 5000))
            validator = RequestValidator(TWILIO_TOKEN)
            requests = [twilio_request(base, i, validator, ids[f"SM{i:032x}"]) for i in range(count)]
            requests += [whatsapp_request(base, i, ids[f"wamid.bench{i}"]) for i in range(count)]
            rng = random.Random(7)
            requests += rng.sample(requests, len(requests) // 20)  # provider retries
            rng.shuffle(requests)
            rate, latencies, failures = await fire(requests)
        async with database.sessions() as session:
            delivered = await session.scalar(
                select(func.count())
                .select_from(CustomerCommunication)
                .where(
                    CustomerCommunication.status == "delivered", CustomerCommunication.source_ref == "bench"
                )
            )
            events = await session.scalar(
                select(func.count())
                .select_from(MessageStatusEvent)
                .where(MessageStatusEvent.status == "delivered")
            )
            feed = await session.scalar(select(func.sum(CommunicationAnalytics.delivered)))
        await database.dispose()
    exactly_once = failures == 0 and delivered == events == feed == 2 * count
    return {
        "req_per_s": round(rate, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "baseline_req_per_s": round(base_rate, 1),
        "ratio": round(rate / base_rate, 3),
        "applied_exactly_once": exactly_once,
        "requests": len(requests),
        "statuses": 2 * count,
        "failures": failures,
        "database": url.split(":", 1)[0],
        "web_processes": web_processes,
        "months_of_history": months,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller run, under 60 s")
    parser.add_argument(
        "--database", help="a scratch postgresql+asyncpg:// URL (its tables are dropped first)"
    )
    parser.add_argument("--web-processes", type=int, default=1)
    parser.add_argument(
        "--months",
        type=int,
        default=0,
        help="months of history the database holds first (one month partition each on PostgreSQL)",
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.quick, args.database, args.web_processes, args.months))))
