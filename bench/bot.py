"""Benchmark: the Slack front end in-process on seeded demo data, against a local fake of the Slack Web API.

Prints one JSON line: the slash-command acknowledgement p99 (Slack's limit is 3 s) and the p50 time from a
signed "kpi revenue last 90 days by channel" request to the chart upload completing at the fake API.
The baseline is the same request answered with plain help text (no query, no chart), measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from litestar.testing import AsyncTestClient
from slack_sdk.signature import SignatureVerifier

from api.app import create_app
from bench._common import percentile
from reports.rollups import rebuild_rollups
from storage import migrate
from storage.database import Database
from storage.seeding import SeedPlan, seed_database
from switchboard.settings import Settings
from tests.fakes.slack_api import FakeSlackApi

SECRET, TOKEN, USER, TEAM = "bench-signing-secret", "xoxb-bench", "U0ADMIN", "T0NORTHWIND"
CACHE = Path("/tmp/switchboard-bench")  # noqa: S108 - a cache of generated data, nothing secret


async def demo_database(customers: int, days: int) -> str:
    """The `make demo` data set, seeded once and cached between runs."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"bot-{customers}x{days}.db"
    url = f"sqlite+aiosqlite:///{path}"
    if not path.exists():
        await migrate.upgrade(url)
        database = Database.connect(url)
        end = (datetime.now(UTC) - timedelta(days=1)).date()
        await seed_database(database, SeedPlan(customers=customers, days=days, seed=1, end_date=end))
        await rebuild_rollups(database, grains=("day", "week", "month"), business_tz="Europe/Berlin")
        await database.dispose()
    return url


def signed(text: str, fake: FakeSlackApi, n: int) -> tuple[str, dict[str, str]]:
    body = urlencode(
        {
            "command": "/sb",
            "text": text,
            "user_id": USER,
            "team_id": TEAM,
            "channel_id": "C0BENCH",
            "response_url": fake.response_url(f"r{n}"),
            "trigger_id": f"t{n}",
        }
    )
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body) or ""
    return body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


async def timed_request(
    client: AsyncTestClient, fake: FakeSlackApi, text: str, n: int, done_method: str, done_before: int
) -> tuple[float, float]:
    body, headers = signed(text, fake, n)
    started = time.perf_counter()
    response = await client.post("/slack/events", content=body, headers=headers)
    ack = time.perf_counter() - started
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 30
    while len(fake.of(done_method)) <= done_before:
        assert time.monotonic() < deadline, f"no {done_method} after {text!r}"
        await asyncio.sleep(0.002)
    return ack, time.perf_counter() - started


async def main(quick: bool) -> dict[str, object]:
    customers, days, runs = (300, 120, 8) if quick else (800, 180, 25)
    url = await demo_database(customers, days)
    fake = FakeSlackApi(token=TOKEN)
    fake.start()
    settings = Settings(
        database_url=url,
        slack_signing_secret=SECRET,
        slack_bot_token=TOKEN,  # type: ignore[arg-type]
        slack_base_url=fake.base_url,
        worker_in_process=False,
        sandbox=False,
    )
    acks: list[float] = []
    charts: list[float] = []
    cached: list[float] = []
    plain: list[float] = []
    try:
        async with AsyncTestClient(app=create_app(settings)) as client:
            await timed_request(client, fake, "help", 0, "chat.postMessage", 0)  # warm up: auth.test, imports
            await timed_request(
                client, fake, "kpi revenue last 90 days by channel", 1, "files.completeUploadExternal", 0
            )
            for n in range(runs):
                before = len(fake.of("chat.postMessage"))
                ack, total = await timed_request(client, fake, "help", 100 + n, "chat.postMessage", before)
                acks.append(ack)
                plain.append(total)
                # A different period each run, so neither the query nor the chart comes from a cache.
                before = len(fake.of("files.completeUploadExternal"))
                text = f"kpi revenue last {60 + n} days by channel"
                ack, total = await timed_request(
                    client, fake, text, 200 + n, "files.completeUploadExternal", before
                )
                acks.append(ack)
                charts.append(total)
                before = len(fake.of("files.completeUploadExternal"))
                text = "kpi revenue last 90 days by channel"
                _ack, total = await timed_request(
                    client, fake, text, 300 + n, "files.completeUploadExternal", before
                )
                cached.append(total)
    finally:
        fake.stop()
    if "--debug" in sys.argv:
        print([round(a * 1000, 1) for a in acks], file=sys.stderr)
    return {
        "ack_p99_ms": round(percentile(acks, 0.99) * 1000, 1),
        "chart_e2e_p50_ms": round(percentile(charts, 0.5) * 1000, 1),
        "cached_chart_e2e_p50_ms": round(percentile(cached, 0.5) * 1000, 1),
        "baseline_text_reply_p50_ms": round(percentile(plain, 0.5) * 1000, 1),
        "runs": runs,
        "customers": customers,
        "days": days,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data set and fewer runs, under 60 s")
    parser.add_argument("--debug", action="store_true", help="also print every acknowledgement time")
    print(json.dumps(asyncio.run(main(parser.parse_args().quick))))
