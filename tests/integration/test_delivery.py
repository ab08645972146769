"""Delivery through the real drivers to the provider sandbox over HTTP: exactly once, with retries and dead letters."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update

from api.sandbox.config import ChaosConfig, SandboxConfig
from api.sandbox.server import RunningSandbox, run_sandbox
from domain.delivery.dispatch import Dispatcher
from domain.delivery.outbox import RetryPolicy
from domain.delivery.pacing import TokenBucket
from domain.delivery.ports import MessageDriver
from domain.vocabulary import Channel
from providers.twilio.driver import TwilioSmsDriver
from providers.whatsapp.driver import WhatsAppCloudDriver
from storage.database import Database
from storage.models import BulkMessaging, CommunicationAnalytics, CustomerCommunication, MessageStatusEvent
from storage.unit_of_work import SqlUnitOfWork

CREDENTIALS = SandboxConfig()
FAST = RetryPolicy(
    max_attempts=12,
    base_delay=timedelta(milliseconds=20),
    max_delay=timedelta(milliseconds=200),
    lease=timedelta(seconds=5),
    in_doubt_grace=timedelta(milliseconds=300),
)


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    config = replace(CREDENTIALS, port=0, smtp_port=0, send_status_webhooks=False, seed=7)
    async with run_sandbox(config) as running:
        yield running


def sms_driver(sandbox: RunningSandbox, timeout: float = 1.5) -> TwilioSmsDriver:
    return TwilioSmsDriver(
        CREDENTIALS.twilio_account_sid,
        CREDENTIALS.twilio_auth_token,
        CREDENTIALS.twilio_phone_number,
        base_url=sandbox.base_url,
        status_callback_url="http://127.0.0.1:9/webhooks/twilio/status",
        timeout_seconds=timeout,
    )


async def plan_messages(database: Database, count: int, channel: str = "sms", start: int = 0) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "channel": channel,
            "provider": "twilio" if channel == "sms" else "whatsapp_cloud",
            "direction": "outbound",
            "source": "campaign",
            "source_ref": "test",
            "category": "marketing",
            "idempotency_key": f"campaign:test:{i}:{channel}",
            "to_address": f"+4915100{i:06d}",
            "body": f"Hello customer {i}",
            "status": "planned",
            "next_attempt_at": now,
            "attempts": 0,
            "created_at": now,
        }
        for i in range(start, start + count)
    ]
    async with database.engine.begin() as connection:
        for chunk in range(0, len(rows), 1000):
            await connection.execute(insert(CustomerCommunication), rows[chunk : chunk + 1000])


def dispatcher(
    database: Database,
    drivers: dict[Channel, MessageDriver],
    *,
    worker: str = "w1",
    rate: float = 2000.0,
    concurrency: int = 32,
) -> Dispatcher:
    return Dispatcher(
        open_uow=lambda: SqlUnitOfWork(database),
        drivers=drivers,
        pacing={channel: TokenBucket(rate) for channel in drivers},
        worker_id=worker,
        policy=FAST,
        concurrency=concurrency,
    )


async def drain(database: Database, *workers: Dispatcher, limit_seconds: float = 60) -> None:
    """Runs the workers until no message is planned or being sent."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop, idle_sleep=0.05)) for w in workers]
    deadline = time.monotonic() + limit_seconds
    try:
        while time.monotonic() < deadline:
            if await count_by_status(database, "planned", "sending") == 0:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"outbox not drained within {limit_seconds}s: {await statuses(database)}")
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def count_by_status(database: Database, *wanted: str) -> int:
    async with database.sessions() as session:
        query = (
            select(func.count())
            .select_from(CustomerCommunication)
            .where(CustomerCommunication.status.in_(wanted))
        )
        return int((await session.scalar(query)) or 0)


async def statuses(database: Database) -> dict[str, int]:
    async with database.sessions() as session:
        rows = await session.execute(
            select(CustomerCommunication.status, func.count()).group_by(CustomerCommunication.status)
        )
        return {status: count for status, count in rows.all()}


def accepted_per_key(sandbox: RunningSandbox, provider: str = "twilio") -> Counter[str]:
    return Counter(m.idempotency_key for m in sandbox.state.messages if m.provider == provider)


async def test_every_planned_sms_reaches_the_provider_once_and_is_recorded(
    database: Database, sandbox: RunningSandbox
) -> None:
    await plan_messages(database, 300)
    driver = sms_driver(sandbox)
    try:
        worker = dispatcher(database, {Channel.SMS: driver})
        await drain(database, worker)
    finally:
        await driver.close()
    per_key = accepted_per_key(sandbox)
    assert len(per_key) == 300 and set(per_key.values()) == {1}
    assert await statuses(database) == {"queued": 300}
    async with database.sessions() as session:
        events = await session.scalar(select(func.count()).select_from(MessageStatusEvent))
        sent = await session.scalar(select(func.sum(CommunicationAnalytics.sent)))
        ids = set(await session.scalars(select(CustomerCommunication.provider_message_id)))
    assert events == 300 and sent == 300
    assert ids == {m.provider_message_id for m in sandbox.state.messages}


async def test_permanent_errors_dead_letter_at_once_with_the_reason(
    database: Database, sandbox: RunningSandbox
) -> None:
    await plan_messages(database, 5)
    sandbox.state.opt_out("+4915100000003")
    driver = sms_driver(sandbox)
    try:
        await drain(database, dispatcher(database, {Channel.SMS: driver}))
    finally:
        await driver.close()
    async with database.sessions() as session:
        dead = (
            await session.scalars(select(CustomerCommunication).where(CustomerCommunication.status == "dead"))
        ).one()
    assert dead.to_address == "+4915100000003"
    assert dead.error_code == "21610" and dead.attempts == 1
    assert "21610" in (dead.status_reason or "")


async def test_whatsapp_free_text_outside_the_window_fails_fast(
    database: Database, sandbox: RunningSandbox
) -> None:
    await plan_messages(database, 2, channel="whatsapp")
    driver = WhatsAppCloudDriver(
        CREDENTIALS.whatsapp_token,
        CREDENTIALS.whatsapp_phone_number_id,
        base_url=sandbox.base_url,
        timeout_seconds=1.5,
    )
    try:
        await drain(database, dispatcher(database, {Channel.WHATSAPP: driver}))
    finally:
        await driver.close()
    assert await statuses(database) == {"dead": 2}
    async with database.sessions() as session:
        codes = set(await session.scalars(select(CustomerCommunication.error_code)))
    assert codes == {"131047"}


async def test_provider_chaos_ends_delivered_or_dead_never_duplicated(database: Database) -> None:
    chaos = ChaosConfig(
        rate_429=0.08,
        rate_500=0.05,
        rate_503=0.04,
        rate_timeout=0.03,
        hang_seconds=1.5,
        retry_after_seconds=0,
    )
    config = replace(CREDENTIALS, port=0, smtp_port=0, send_status_webhooks=False, chaos=chaos, seed=11)
    async with run_sandbox(config) as sandbox:
        await plan_messages(database, 250)
        driver = sms_driver(sandbox, timeout=0.5)
        try:
            await drain(database, dispatcher(database, {Channel.SMS: driver}), limit_seconds=120)
        finally:
            await driver.close()
        totals = sandbox.state.totals()
        per_key = accepted_per_key(sandbox)
    final = await statuses(database)
    assert set(final) <= {"queued", "dead"} and sum(final.values()) == 250
    assert totals.get("injected_errors", 0) > 0 or totals.get("rate_limited_429s", 0) > 0
    assert set(per_key.values()) <= {1}, "a recipient got the message twice"
    assert len(per_key) == final.get("queued", 0)
    async with database.sessions() as session:
        reasons = list(
            await session.scalars(
                select(CustomerCommunication.status_reason).where(CustomerCommunication.status == "dead")
            )
        )
    assert all(reasons), "every dead letter says why"


async def test_two_workers_racing_never_claim_the_same_message(
    database: Database, sandbox: RunningSandbox
) -> None:
    await plan_messages(database, 600)
    drivers = [sms_driver(sandbox), sms_driver(sandbox)]
    try:
        await drain(
            database,
            dispatcher(database, {Channel.SMS: drivers[0]}, worker="w1"),
            dispatcher(database, {Channel.SMS: drivers[1]}, worker="w2"),
        )
    finally:
        for d in drivers:
            await d.close()
    assert sandbox.state.totals().get("duplicates_suppressed", 0) == 0
    per_key = accepted_per_key(sandbox)
    assert len(per_key) == 600 and set(per_key.values()) == {1}
    async with database.sessions() as session:
        by_worker = await session.execute(
            select(MessageStatusEvent.source, func.count()).group_by(MessageStatusEvent.source)
        )
    assert dict(by_worker.all()) == {"outbox": 600}


async def test_pacing_holds_the_configured_rate(database: Database, sandbox: RunningSandbox) -> None:
    await plan_messages(database, 120)
    driver = sms_driver(sandbox)
    started = time.monotonic()
    try:
        await drain(database, dispatcher(database, {Channel.SMS: driver}, rate=100.0))
    finally:
        await driver.close()
    elapsed = time.monotonic() - started
    assert elapsed >= 1.0, f"120 messages at 100/s took only {elapsed:.2f}s"


def start_worker(database_url: str, sandbox: RunningSandbox) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_TWILIO_BASE_URL": sandbox.base_url,
        "SWITCHBOARD_TWILIO_ACCOUNT_SID": CREDENTIALS.twilio_account_sid,
        "SWITCHBOARD_TWILIO_AUTH_TOKEN": CREDENTIALS.twilio_auth_token,
        "SWITCHBOARD_SMS_RATE_PER_SECOND": "400",
        "SWITCHBOARD_WHATSAPP_RATE_PER_SECOND": "400",
        "SWITCHBOARD_EMAIL_RATE_PER_SECOND": "400",
        "SWITCHBOARD_TELEGRAM_RATE_PER_SECOND": "400",
        "SWITCHBOARD_WORKER_LEASE_SECONDS": "4",
        # A short lease needs short timeouts: a claim must outlast the longest send (settings check it).
        "SWITCHBOARD_PROVIDER_TIMEOUT_SECONDS": "0.5",
        "SWITCHBOARD_SMTP_TIMEOUT_SECONDS": "0.5",
        "SWITCHBOARD_WORKER_IN_DOUBT_GRACE_SECONDS": "0.5",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "switchboard.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
async def test_a_worker_killed_mid_campaign_resumes_without_duplicates_or_losses(
    database: Database, database_url: str, sandbox: RunningSandbox
) -> None:
    total = 1500
    await plan_messages(database, total)
    for _kill in range(2):
        worker = start_worker(database_url, sandbox)
        deadline = time.monotonic() + 30
        while len(sandbox.state.messages) < 300 * (_kill + 1) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    assert 0 < await count_by_status(database, "planned", "sending")
    survivor = start_worker(database_url, sandbox)
    try:
        deadline = time.monotonic() + 90
        while await count_by_status(database, "planned", "sending") and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.wait(timeout=30)
    per_key = accepted_per_key(sandbox)
    assert len(per_key) == total, "a recipient was lost"
    assert set(per_key.values()) == {1}, "a recipient got the message twice"
    assert await statuses(database) == {"queued": total}


async def _campaign(database: Database, status: str = "running") -> int:
    now = datetime.now(UTC)
    async with database.sessions() as session:
        campaign = BulkMessaging(
            slug="pause-me",
            name="Pause me",
            status=status,
            template_name="none",
            channel_order=["sms"],
            audience={},
            variables={},
            category="marketing",
            created_at=now,
        )
        session.add(campaign)
        await session.commit()
        return int(campaign.id)


@pytest.mark.parametrize("stop", ["paused", "cancelled"])
async def test_a_pause_or_cancel_stops_a_batch_already_being_sent(
    database: Database, sandbox: RunningSandbox, stop: str
) -> None:
    """A paced batch takes seconds; a pause (or cancel) takes effect within about a second, not after it."""
    campaign_id = await _campaign(database)
    await plan_messages(database, 120)
    async with database.sessions() as session:
        await session.execute(update(CustomerCommunication).values(campaign_id=campaign_id))
        await session.commit()
    driver = sms_driver(sandbox)
    worker = dispatcher(database, {Channel.SMS: driver}, rate=20.0)
    worker.policy = replace(FAST, lease=timedelta(seconds=60))  # one batch of all 120 at 20/s
    worker.hold_check_seconds = 0.2
    run = asyncio.create_task(worker.deliver_batch())
    try:
        await asyncio.sleep(1.0)
        async with database.sessions() as session:
            await session.execute(update(BulkMessaging).values(status=stop))
            await session.commit()
        claimed = await run
        await worker.finish()
    finally:
        await driver.close()
    sent = len(accepted_per_key(sandbox))
    assert claimed == 120 and 0 < sent < 60, sent  # about 20-40 at 20/s before the pause was seen
    by_status = await statuses(database)
    assert by_status.get("queued", 0) == sent
    # Held messages were never tried: back in the outbox (or cancelled with their campaign), attempt given back.
    left = "planned" if stop == "paused" else "cancelled"
    assert by_status.get(left, 0) == 120 - sent, by_status
    async with database.sessions() as session:
        attempts = set(
            await session.scalars(
                select(CustomerCommunication.attempts).where(CustomerCommunication.status == left)
            )
        )
    assert attempts == {0}
