"""Benchmark: live chat in Slack threads, end to end through `switchboard serve` and its provider sandbox.

1. inbound to thread: a customer's WhatsApp message (sent in the sandbox, which signs and delivers the webhook)
   to its post in the conversation's thread at the sandbox's Slack stand-in (the post's own Slack `ts`).
2. reply to provider: an agent's thread reply (a signed Slack event from the stand-in) to the WhatsApp stand-in
   accepting the message for the customer.
3. sustained: RATE inbound messages a second across CONVERSATIONS open conversations with AGENTS agents
   online; within two minutes of the last one every message must be in its thread exactly once (`lost`,
   `duplicates`); `sustained_drain_seconds` is how long the posts trailed the last message.
4. inbox list: the web inbox's queue and its tab counts (the read models the page calls) over INBOX_SESSIONS
   conversations, against a bare primary-key read of 25 conversations as the baseline.

Baselines measured in the same run: `/healthz` round trip p50 (for 1-3) and the bare read (for 4).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import child, free_port, percentile, wait_http
from storage import migrate
from storage.database import Database
from storage.models import ChatMessage, ChatSession, Customer, StaffUser
from storage.queries.chats import desk_counts, desk_queue

LIVE_CHAT = "C0LIVECHAT"
TEAM = "T0NORTHWIND"
AGENT_SLACK_ID = "U0AGENT01"


def wa_id(i: int) -> str:
    return f"4917{i:09d}"


async def populate(database: Database, conversations: int, agents: int) -> None:
    now = datetime.now(UTC)
    async with database.engine.begin() as connection:
        await connection.execute(
            insert(StaffUser),
            [
                {
                    "id": n + 1,
                    "email": f"agent{n + 1}@bench.example",
                    "name": f"Agent {n + 1}",
                    "role": "agent",
                    "availability": "online",
                    "chat_capacity": 200,
                    "slack_team_id": TEAM if n == 0 else None,
                    "slack_user_id": AGENT_SLACK_ID if n == 0 else None,
                }
                for n in range(agents)
            ],
        )
        await connection.execute(
            insert(Customer),
            [
                {
                    "id": i + 1,
                    "name": f"Customer {i + 1}",
                    "whatsapp_id": wa_id(i),
                    "phone_e164": f"+{wa_id(i)}",
                }
                for i in range(conversations)
            ],
        )
        await connection.execute(
            insert(ChatSession),
            [
                {
                    "customer_id": i + 1,
                    "channel": "whatsapp",
                    "status": "open",
                    "assigned_staff_id": i % agents + 1,
                    "started_at": now - timedelta(minutes=5),
                    "last_message_at": now - timedelta(minutes=5),
                }
                for i in range(conversations)
            ],
        )


async def add_history(database: Database, total: int, agents: int) -> None:
    """Old conversations, so the inbox reads over `total` sessions (mostly resolved, as in real life)."""
    now = datetime.now(UTC)
    async with database.engine.begin() as connection:
        have = len((await connection.execute(select(ChatSession.id))).all())
        rows = []
        for i in range(total - have):
            started = now - timedelta(hours=1 + i % 5000)
            rows.append(
                {
                    "customer_id": i % 2000 + 1,
                    "channel": "whatsapp",
                    "status": "closed" if i % 50 else "open",
                    "assigned_staff_id": i % agents + 1,
                    "started_at": started,
                    "last_message_at": started,
                    "closed_at": started + timedelta(minutes=20) if i % 50 else None,
                }
            )
            if len(rows) == 5000:
                await connection.execute(insert(ChatSession), rows)
                rows = []
        if rows:
            await connection.execute(insert(ChatSession), rows)


async def healthz_p50(session: aiohttp.ClientSession, base: str, count: int = 50) -> float:
    took = []
    for _ in range(count):
        started = time.perf_counter()
        async with session.get(f"{base}/healthz") as answer:
            await answer.read()
        took.append(time.perf_counter() - started)
    return percentile(took, 0.5) * 1000


async def customer_writes(session: aiohttp.ClientSession, sandbox: str, customer: int, body: str) -> float:
    sent = time.time()
    async with session.post(
        f"{sandbox}/_sandbox/customer/whatsapp", json={"from": wa_id(customer), "body": body}
    ) as a:
        await a.read()
    return sent


async def live_chat(session: aiohttp.ClientSession, sandbox: str) -> list[dict[str, Any]]:
    async with session.get(f"{sandbox}/_sandbox/slack/channels/{LIVE_CHAT}/messages") as answer:
        found: list[dict[str, Any]] = (await answer.json())["messages"]
    return found


def posted_bodies(messages: list[dict[str, Any]]) -> Counter[str]:
    """Each customer turn's text as posted in a thread ("*Customer 7*: bench-12" -> "bench-12")."""
    return Counter(
        m["text"].split(": ", 1)[1] for m in messages if m.get("thread_ts") and ": bench-" in m["text"]
    )


async def wait_until(check: Any, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.2)
    return False


async def inbound_latencies(session: aiohttp.ClientSession, sandbox: str, count: int) -> list[float]:
    sent: dict[str, float] = {}
    for n in range(count):
        body = f"bench-latency-{n}"
        sent[body] = await customer_writes(session, sandbox, n % 2000, body)
        await asyncio.sleep(0.1)

    async def all_posted() -> bool:
        posted = posted_bodies(await live_chat(session, sandbox))
        return all(body in posted for body in sent)

    await wait_until(all_posted, 30)
    latencies = []
    for message in await live_chat(session, sandbox):
        if message.get("thread_ts") and ": bench-latency-" in message["text"]:
            body = message["text"].split(": ", 1)[1]
            latencies.append((float(message["ts"]) - sent[body]) * 1000)
    return latencies


async def reply_latencies(
    session: aiohttp.ClientSession, sandbox: str, count: int
) -> tuple[list[float], int]:
    roots = {
        m["ts"]: m
        for m in await live_chat(session, sandbox)
        if not m.get("thread_ts") and m["text"].startswith("Conversation")
    }
    threads = list(roots)[:count]
    sent: dict[str, float] = {}
    refused = 0
    for n, thread_ts in enumerate(threads):
        text = f"bench-reply-{n}"
        sent[text] = time.time()
        payload = {"user": AGENT_SLACK_ID, "channel": LIVE_CHAT, "thread_ts": thread_ts, "text": text}
        async with session.post(f"{sandbox}/_sandbox/slack/thread-reply", json=payload) as answer:
            refused += int(answer.status != 202)
        await asyncio.sleep(0.1)

    async def accepted() -> list[dict[str, Any]]:
        async with session.get(f"{sandbox}/_sandbox/messages?provider=whatsapp_cloud") as answer:
            messages: list[dict[str, Any]] = (await answer.json())["messages"]
        return [m for m in messages if m["direction"] == "outbound" and m["body"] in sent]

    async def all_accepted() -> bool:
        return len(await accepted()) >= len(sent)

    await wait_until(all_accepted, 30)
    latencies = [
        (datetime.fromisoformat(m["created_at"]).timestamp() - sent[m["body"]]) * 1000
        for m in await accepted()
    ]
    return latencies, refused


async def sustained(
    session: aiohttp.ClientSession,
    sandbox: str,
    database: Database,
    rate: int,
    seconds: int,
    conversations: int,
) -> tuple[int, int, int, float, float, int]:
    rng = random.Random(13)
    expected: list[str] = []
    started = time.monotonic()
    tick = 0
    while time.monotonic() - started < seconds:
        batch = [f"bench-load-{tick}-{k}" for k in range(rate // 10)]
        await asyncio.gather(
            *(customer_writes(session, sandbox, rng.randrange(conversations), b) for b in batch)
        )
        expected += batch
        tick += 1
        pause = started + tick * 0.1 - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
    achieved = len(expected) / (time.monotonic() - started)

    async def drained() -> bool:
        # Asked of the database, not the stand-in: reading thousands of Slack messages every moment would
        # slow the stand-in down and measure the benchmark instead of Switchboard.
        async with database.read_sessions() as read:
            waiting = await read.scalar(
                select(func.count()).select_from(ChatMessage).where(ChatMessage.mirrored_at.is_(None))
            )
        return waiting == 0

    async def all_in_slack() -> bool:
        posted = posted_bodies(await live_chat(session, sandbox))
        return all(body in posted for body in expected)

    sent_by = time.monotonic()
    await wait_until(drained, 120)
    # A turn counts as taken when its post starts: let the last posts land, then look once more at Slack.
    await wait_until(all_in_slack, 15)
    # How long the thread posts trailed the last message (0: they kept up).
    drain = time.monotonic() - sent_by
    posted = posted_bodies(await live_chat(session, sandbox))
    lost = sum(1 for body in expected if body not in posted)
    async with database.read_sessions() as read:
        stored = set(
            await read.scalars(select(ChatMessage.body).where(ChatMessage.body.like("bench-load-%")))
        )
    async with session.get(f"{sandbox}/_sandbox/stats") as answer:
        outcomes = (await answer.json()).get("by_provider", {}).get("whatsapp_cloud", {})
    print(
        f"not stored: {sum(1 for b in expected if b not in stored)}, "
        f"stored not posted: {sum(1 for b in expected if b in stored and b not in posted)}, "
        f"webhooks: {dict(outcomes)}",
        file=sys.stderr,
    )
    duplicates = sum(
        count - 1 for body, count in posted.items() if body.startswith("bench-load-") and count > 1
    )
    return len(expected), lost, duplicates, achieved, drain, int(outcomes.get("webhooks_dropped", 0))


async def inbox_timings(database: Database, repeat: int) -> tuple[float, float]:
    list_took, bare_took = [], []
    for n in range(repeat):
        started = time.perf_counter()
        await desk_queue(database, ("open", "unassigned", "mine")[n % 3], 1)
        await desk_counts(database, 1)
        list_took.append(time.perf_counter() - started)
        started = time.perf_counter()
        async with database.read_sessions() as session:
            list(await session.scalars(select(ChatSession).where(ChatSession.id <= 25)))
        bare_took.append(time.perf_counter() - started)
    return percentile(list_took, 0.5) * 1000, percentile(bare_took, 0.5) * 1000


async def main(quick: bool) -> dict[str, object]:
    conversations, agents = 2000, 20
    rate, seconds = 50, 8 if quick else 60
    inbox_sessions = 20_000 if quick else 100_000
    port, sandbox_port = free_port(), free_port()
    base, sandbox = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sandbox_port}"
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'chat.db'}"
        await migrate.upgrade(url)
        database = Database.connect(url)
        await populate(database, conversations, agents)
        env = {
            "SWITCHBOARD_DATABASE_URL": url,
            "SWITCHBOARD_PUBLIC_URL": base,
            "SWITCHBOARD_SANDBOX": "1",
            "SWITCHBOARD_SANDBOX_PORT": str(sandbox_port),
            "SWITCHBOARD_SANDBOX_SMTP_PORT": str(free_port()),
            "SWITCHBOARD_WORKER_IN_PROCESS": "1",
            "SWITCHBOARD_SLACK_CHAT_CHANNEL": LIVE_CHAT,
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
            # The sandbox holds every webhook as Meta would (for days), however far behind the app falls:
            # a message the sandbox dropped would count as lost here though the app never saw it.
            "SWITCHBOARD_SANDBOX_WEBHOOK_QUEUE": "100000",
        }
        started = time.monotonic()
        log = Path(folder) / "serve.log"
        with child(["-m", "switchboard.cli", "serve", "--port", str(port)], env, log=log):
            wait_http(f"{base}/healthz")
            wait_http(f"{sandbox}/_sandbox/stats")
            async with aiohttp.ClientSession() as session:
                await healthz_p50(session, base, 20)  # warm up
                baseline_ms = await healthz_p50(session, base)
                ready = time.monotonic()
                inbound = await inbound_latencies(session, sandbox, 20 if quick else 100)
                replies, refused = await reply_latencies(session, sandbox, 6 if quick else 40)
                measured = time.monotonic()
                sent, lost, duplicates, achieved, drain, dropped = await sustained(
                    session, sandbox, database, rate, seconds, conversations
                )
                loaded = time.monotonic()
        await add_history(database, inbox_sessions, agents)
        inbox_ms, bare_ms = await inbox_timings(database, 30)
        troubles = [
            line
            for line in log.read_text(errors="replace").splitlines()
            if "WARNING" in line or "ERROR" in line
        ]
        for line in troubles[:20]:
            print(line, file=sys.stderr)
        phases = {
            "start": ready - started,
            "latencies": measured - ready,
            "sustained": loaded - measured,
            "inbox": time.monotonic() - loaded,
        }
        await database.dispose()
    inbound_p50 = percentile(inbound, 0.5)
    return {
        "inbound_to_thread_p50_ms": round(inbound_p50, 1),
        "inbound_to_thread_p99_ms": round(percentile(inbound, 0.99), 1),
        "reply_to_provider_p50_ms": round(percentile(replies, 0.5), 1),
        "inbox_list_ms": round(inbox_ms, 2),
        "lost": lost,
        "duplicates": duplicates,
        "sandbox_webhooks_dropped": dropped,  # the provider stand-in's own losses (0: every message reached us)
        "sustained_messages": sent,
        "sustained_rate_per_s": round(achieved, 1),
        "sustained_seconds": seconds,
        "sustained_drain_seconds": round(drain, 1),
        "open_conversations": conversations,
        "agents_online": agents,
        "inbox_sessions": inbox_sessions,
        "replies_measured": len(replies),
        "replies_refused": refused,
        "baseline_healthz_p50_ms": round(baseline_ms, 2),
        "inbound_ratio_to_healthz": round(inbound_p50 / baseline_ms, 1) if baseline_ms else None,
        "baseline_inbox_bare_read_ms": round(bare_ms, 2),
        "inbox_ratio_to_bare_read": round(inbox_ms / bare_ms, 1) if bare_ms else None,
        "database": "sqlite",
        "phase_seconds": {name: round(took, 1) for name, took in phases.items()},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller run, under 60 s")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.quick))))
