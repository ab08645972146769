"""The delivery worker under faults, on both engines: a record that fails is recorded again (never sent
again), one hanging provider call holds one place only, retries go before the backlog, and a provider that
reuses a message id is noted, not a failed batch."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from domain.delivery.dispatch import Dispatcher
from domain.delivery.outbox import RetryPolicy
from domain.delivery.pacing import TokenBucket
from domain.delivery.ports import OutboundMessage, ProviderAcceptance, ProviderError
from domain.vocabulary import Channel, MessageStatus
from storage.database import Database, is_transient
from storage.message_feed import verify_feed
from storage.models import CommunicationAnalytics, CustomerCommunication
from storage.unit_of_work import SqlUnitOfWork
from switchboard.delivery import process_name
from tests.integration.test_delivery import plan_messages, statuses

POLICY = RetryPolicy(
    max_attempts=5,
    base_delay=timedelta(milliseconds=20),
    max_delay=timedelta(milliseconds=100),
    lease=timedelta(seconds=30),
    in_doubt_grace=timedelta(milliseconds=200),
)


class RecordingDriver:
    """A provider stand-in that counts every send per message and can hang or reuse ids."""

    channel = Channel.SMS
    provider = "twilio"
    receipts_name_our_id = True
    timeout_seconds = 15.0

    def __init__(
        self, *, hang: set[str] = frozenset(), hang_seconds: float = 0.0, same_id: bool = False
    ) -> None:
        self.sends: Counter[str] = Counter()
        self.hang, self.hang_seconds, self.same_id = hang, hang_seconds, same_id
        self.finished_at: dict[str, float] = {}

    async def send(self, message: OutboundMessage) -> ProviderAcceptance:
        self.sends[message.to] += 1
        if message.to in self.hang:
            await asyncio.sleep(self.hang_seconds)
        self.finished_at[message.to] = time.monotonic()
        return ProviderAcceptance("SMSAME" if self.same_id else f"SM{message.message_id}")

    async def close(self) -> None:
        return None


def worker(database: Database, driver: Any, **changes: Any) -> Dispatcher:
    values: dict[str, Any] = {
        "open_uow": lambda: SqlUnitOfWork(database),
        "drivers": {Channel.SMS: driver},
        "pacing": {Channel.SMS: TokenBucket(5000.0)},
        "worker_id": "w1",
        "policy": POLICY,
        "concurrency": 8,
        "transient": is_transient,
    }
    values.update(changes)
    return Dispatcher(**values)


async def run_until_drained(database: Database, dispatcher: Dispatcher, limit: float = 30.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop, idle_sleep=0.02))
    deadline = time.monotonic() + limit
    try:
        while time.monotonic() < deadline:
            counts = await statuses(database)
            if not counts.get("planned") and not counts.get("sending"):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"not drained: {await statuses(database)}")
    finally:
        stop.set()
        await task


async def run_while(dispatcher: Dispatcher, going: Callable[[], bool], limit: float) -> None:
    """Runs the dispatcher until `going` turns false or `limit` seconds pass, then stops it."""
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop, idle_sleep=0.02))
    try:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and going():
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


class FailingRecords:
    """A unit of work whose recording fails for some messages, as a bad row or a deadlock would."""

    def __init__(self, database: Database, poisoned: set[int], *, times: int, error: Exception) -> None:
        self.database, self.poisoned, self.times, self.error = database, poisoned, times, error
        self.failures = 0

    def __call__(self) -> SqlUnitOfWork:
        return _FailingUnitOfWork(self)


class _FailingUnitOfWork(SqlUnitOfWork):
    def __init__(self, plan: FailingRecords) -> None:
        super().__init__(plan.database)
        self.plan = plan

    async def __aenter__(self) -> _FailingUnitOfWork:
        await super().__aenter__()
        record = self.outbox.record_outcomes
        plan = self.plan

        async def failing(outcomes: Any, worker_id: str | None = None, created: Any = None) -> None:
            outcomes = list(outcomes)
            if plan.failures < plan.times and any(o.message_id in plan.poisoned for o in outcomes):
                plan.failures += 1
                raise plan.error
            await record(outcomes, worker_id, created)

        self.outbox.record_outcomes = failing  # type: ignore[method-assign]
        return self


class Deadlock(Exception):
    sqlstate = "40P01"


async def test_one_bad_row_does_not_resend_the_batch(database: Database) -> None:
    await plan_messages(database, 60)
    async with database.read_sessions() as session:
        ids = sorted(await session.scalars(select(CustomerCommunication.id)))
    poisoned = {ids[7], ids[31]}
    driver = RecordingDriver()
    failing = FailingRecords(database, poisoned, times=6, error=ValueError("bad row"))
    dispatcher = worker(database, driver, open_uow=failing)
    await run_until_drained(database, dispatcher)
    assert sum(driver.sends.values()) == 60 and set(driver.sends.values()) == {1}, "a message went twice"
    assert await statuses(database) == {"queued": 60}
    assert dispatcher.stats.recorded_late >= 1 and failing.failures == 6
    async with database.sessions() as session:
        assert (await verify_feed(session, ZoneInfo("UTC"))).drift == []


async def test_a_deadlocked_record_is_tried_again_as_a_whole(database: Database) -> None:
    await plan_messages(database, 40)
    async with database.read_sessions() as session:
        first = await session.scalar(select(func.min(CustomerCommunication.id)))
    driver = RecordingDriver()
    failing = FailingRecords(database, {int(first or 0)}, times=1, error=Deadlock("deadlock detected"))
    dispatcher = worker(database, driver, open_uow=failing)
    await run_until_drained(database, dispatcher)
    assert set(driver.sends.values()) == {1} and sum(driver.sends.values()) == 40
    assert failing.failures == 1 and dispatcher.stats.recorded_late == 0  # retried together, not one by one


async def test_one_hanging_call_holds_one_place_only(database: Database) -> None:
    await plan_messages(database, 200)
    hung = "+4915100000003"
    driver = RecordingDriver(hang={hung}, hang_seconds=3.0)
    dispatcher = worker(database, driver, concurrency=4)
    started = time.monotonic()
    await run_until_drained(database, dispatcher)
    others_done = max(at for to, at in driver.finished_at.items() if to != hung) - started
    assert others_done < 2.5, f"the other 199 waited for the hanging call ({others_done:.1f} s)"
    assert set(driver.sends.values()) == {1}


async def test_retries_are_claimed_before_the_backlog(database: Database) -> None:
    await plan_messages(database, 500)
    async with database.sessions() as session:
        newest = await session.scalar(select(func.max(CustomerCommunication.id)))
        retry = await session.get(CustomerCommunication, newest)
        assert retry is not None
        retry.attempts, retry.next_attempt_at = 1, datetime.now(UTC)  # an in-doubt send whose grace is over
        await session.commit()
    async with SqlUnitOfWork(database) as uow:
        claimed = await uow.outbox.claim_due("w1", datetime.now(UTC) + timedelta(seconds=1), 10, POLICY.lease)
        await uow.commit()
    assert claimed[0].id == newest, "the retry waited behind the backlog"


async def test_a_reused_provider_id_is_kept_as_data(database: Database) -> None:
    await plan_messages(database, 5)
    driver = RecordingDriver(same_id=True)
    await run_until_drained(database, worker(database, driver))
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                select(
                    CustomerCommunication.status,
                    CustomerCommunication.provider_message_id,
                    CustomerCommunication.status_reason,
                )
            )
        ).all()
    assert [r.status for r in rows] == [MessageStatus.QUEUED.value] * 5
    assert sum(1 for r in rows if r.provider_message_id == "SMSAME") == 1
    assert sum(1 for r in rows if r.status_reason and "already has" in r.status_reason) == 4
    assert set(driver.sends.values()) == {1}


class FlakyDriver(RecordingDriver):
    """Every fifth call answers a provider 500 with a Retry-After of 5 s, as WhatsApp's code 1 does."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def send(self, message: OutboundMessage) -> ProviderAcceptance:
        self.calls += 1
        if self.calls % 5 == 0:
            raise ProviderError("provider 500: An unknown error occurred", code="1", retry_after=5.0)
        return await super().send(message)


async def test_a_provider_500_delays_its_message_not_the_channel(database: Database) -> None:
    await plan_messages(database, 100)
    driver = FlakyDriver()
    dispatcher = worker(database, driver, pacing={Channel.SMS: TokenBucket(200.0)})
    started = time.monotonic()
    await run_while(dispatcher, lambda: len(driver.sends) < 80, 20)
    # 80 of the 100 go through on the first try at 200/s; with the channel paused 5 s per 500, they could not.
    assert len(driver.sends) >= 80 and time.monotonic() - started < 3, (
        len(driver.sends),
        time.monotonic() - started,
    )


class EmailDriver(RecordingDriver):
    """Like SMTP: nothing the provider sends back can confirm a send, so a send in doubt is never repeated."""

    channel = Channel.EMAIL
    provider = "smtp"
    receipts_name_our_id = False


async def _messages(database: Database) -> list[Any]:
    async with database.read_sessions() as session:
        return list(
            (
                await session.execute(
                    select(
                        CustomerCommunication.id,
                        CustomerCommunication.status,
                        CustomerCommunication.attempts,
                        CustomerCommunication.status_reason,
                    ).order_by(CustomerCommunication.id)
                )
            ).all()
        )


async def test_a_dead_workers_claims_that_never_reached_the_provider_go_back(database: Database) -> None:
    """Email and Telegram claims wait their turn behind the calls in flight; if the worker dies, only those
    whose call had started are in doubt (ended, never sent twice), the rest go back to the outbox at once."""
    await plan_messages(database, 10, channel="email")
    now = datetime.now(UTC)
    async with SqlUnitOfWork(database) as uow:
        claimed = await uow.outbox.claim_due("dead-worker", now, 10, POLICY.lease, ["email"])
        started = await uow.outbox.note_hand_over(
            "dead-worker", [m.id for m in claimed[:3]], now, now + POLICY.lease
        )
        assert await uow.outbox.note_hand_over("someone-else", [claimed[5].id], now, now + POLICY.lease) == []
        await uow.commit()
    assert sorted(started) == [m.id for m in claimed[:3]]
    later = now + POLICY.lease + timedelta(seconds=1)
    async with SqlUnitOfWork(database) as uow:
        released = await uow.outbox.release_expired_leases(
            later, POLICY.in_doubt_grace, ["sms", "whatsapp"], "in doubt; not sent again"
        )
        await uow.commit()
    assert released == 10
    rows = {row.id: row for row in await _messages(database)}
    assert [rows[m.id].status for m in claimed[:3]] == ["dead"] * 3
    assert all(rows[m.id].status == "planned" and rows[m.id].attempts == 0 for m in claimed[3:])
    async with database.sessions() as session:
        check = await verify_feed(session, ZoneInfo("UTC"))
    assert check.drift == []
    # And the next worker (its clock as late as the release's) sends exactly those seven.
    driver = EmailDriver()
    ahead = later - now
    next_worker = worker(
        database,
        driver,
        drivers={Channel.EMAIL: driver},
        pacing={Channel.EMAIL: TokenBucket(500.0)},
        clock=lambda: datetime.now(UTC) + ahead,
    )
    await run_until_drained(database, next_worker)
    assert sum(driver.sends.values()) == 7 and set(driver.sends.values()) == {1}


async def test_a_stopping_worker_starts_no_new_sends(database: Database) -> None:
    """Told to stop, a worker sees its calls in flight through and puts every claim still waiting its turn
    back unsent, at once, rather than working through its waiting room at the provider's pace."""
    await plan_messages(database, 100, channel="email")
    driver = EmailDriver()
    dispatcher = worker(
        database,
        driver,
        drivers={Channel.EMAIL: driver},
        pacing={Channel.EMAIL: TokenBucket(20.0, burst=1)},
        concurrency=4,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop, idle_sleep=0.02))
    # Stop once a few sends went out (however long a busy machine takes to get there), with most of
    # the 100 claims still waiting their turn at 20 a second.
    deadline = time.monotonic() + 30
    while sum(driver.sends.values()) < 5 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    at_stop = sum(driver.sends.values())
    stop.set()
    stopping = time.monotonic()
    await task
    assert time.monotonic() - stopping < 1.0, "the worker went on sending its waiting room"
    sent = sum(driver.sends.values())
    rows = await _messages(database)
    counts = Counter(row.status for row in rows)
    # Only the calls already in flight (at most the concurrency) finish after the stop.
    assert at_stop >= 5 and sent - at_stop <= 4 and set(driver.sends.values()) == {1}
    assert counts == {"queued": sent, "planned": 100 - sent}, counts
    assert all(row.attempts == 0 for row in rows if row.status == "planned")


async def test_a_channel_told_to_wait_holds_no_other_channels_place(database: Database) -> None:
    """A provider's Retry-After pauses its own channel; the worker's other channels go on at their pace."""
    await plan_messages(database, 40, channel="email")
    await plan_messages(database, 40, start=100)
    email, sms = EmailDriver(), RecordingDriver()
    email_pace, sms_pace = TokenBucket(200.0), TokenBucket(200.0)
    email_pace.hold_off(30)
    dispatcher = worker(
        database,
        sms,
        drivers={Channel.EMAIL: email, Channel.SMS: sms},
        pacing={Channel.EMAIL: email_pace, Channel.SMS: sms_pace},
        concurrency=4,
    )
    await run_while(dispatcher, lambda: len(sms.sends) < 40, 5)
    assert len(sms.sends) == 40, "SMS waited behind email's Retry-After"
    assert not email.sends
    rows = await _messages(database)
    # The waiting channel's messages were left unclaimed, ready for whichever worker gets there first.
    assert Counter(row.status for row in rows) == {"queued": 40, "planned": 40}
    assert all(row.attempts == 0 for row in rows if row.status == "planned")


class CrashingDriver(RecordingDriver):
    """A driver with a bug: its first call for one recipient raises something no provider error is."""

    def __init__(self, crash_for: str) -> None:
        super().__init__()
        self.crash_for = crash_for

    async def send(self, message: OutboundMessage) -> ProviderAcceptance:
        if message.to == self.crash_for and not self.sends[message.to]:
            self.sends[message.to] += 1
            raise KeyError("a bug in the driver")
        return await super().send(message)


async def test_a_driver_crash_is_counted_with_the_provider_calls_and_the_message_still_goes(
    database: Database,
) -> None:
    await plan_messages(database, 10)
    async with database.read_sessions() as session:
        first = await session.scalar(select(CustomerCommunication.to_address).limit(1))
    assert first is not None
    driver = CrashingDriver(first)
    calls: Counter[str] = Counter()
    dispatcher = worker(database, driver, observe=lambda _c, _p, outcome, _s: calls.update([outcome]))
    await run_until_drained(database, dispatcher)
    # switchboard_provider_calls_total counts every call: the crash too, so the error-rate alert sees it.
    assert calls == {"accepted": 10, "driver_error": 1}
    # In doubt (the driver may have handed it over), it waited and went once more: receipts name our id.
    assert driver.sends[first] == 2 and await statuses(database) == {"queued": 10}


async def test_two_workers_with_the_same_host_and_pid_cannot_both_send_a_message(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Containers on the host's network share its hostname, and each one's main process is pid 1: their
    workers are still named apart, so one that stalled past its lease while the other took the message over
    fails the holder's check before it sends, and the message goes once."""
    with monkeypatch.context() as patch:
        patch.setattr(socket, "gethostname", lambda: "clinic-host-" + "x" * 60)
        patch.setattr(os, "getpid", lambda: 1)
        stalled, other = process_name("worker"), process_name("worker")
        patch.setattr(os, "getpid", lambda: 4_194_304)  # Linux's largest pid
        longest = process_name("dispatcher")
    assert stalled != other and max(len(stalled), len(other), len(longest)) <= 64
    assert longest.endswith(":4194304:dispatcher:" + longest[-6:]) and longest.startswith("clinic-host-")
    await plan_messages(database, 1, channel="email")
    now = datetime.now(UTC)
    async with SqlUnitOfWork(database) as uow:
        [message] = await uow.outbox.claim_due(stalled, now, 1, POLICY.lease, ["email"])
        await uow.commit()
    later = now + POLICY.lease + timedelta(seconds=1)
    async with SqlUnitOfWork(database) as uow:
        assert await uow.outbox.release_expired_leases(later, POLICY.in_doubt_grace) == 1
        assert [m.id for m in await uow.outbox.claim_due(other, later, 1, POLICY.lease, ["email"])] == [
            message.id
        ]
        await uow.commit()
    async with SqlUnitOfWork(database) as uow:
        # The stalled worker wakes and asks to hand the message to the provider: refused; the other may.
        assert await uow.outbox.note_hand_over(stalled, [message.id], later, later + POLICY.lease) == []
        assert await uow.outbox.note_hand_over(other, [message.id], later, later + POLICY.lease) == [
            message.id
        ]
        await uow.commit()


class DeliveringDriver(RecordingDriver):
    """A provider whose acceptance is the delivery, as Telegram's is (the message stands in the chat)."""

    async def send(self, message: OutboundMessage) -> ProviderAcceptance:
        await super().send(message)
        return ProviderAcceptance(f"T{message.message_id}", status=MessageStatus.DELIVERED)


async def test_an_acceptance_that_is_the_delivery_is_recorded_and_counted_as_delivered(
    database: Database,
) -> None:
    await plan_messages(database, 4)
    await run_until_drained(database, worker(database, DeliveringDriver()))
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                select(
                    CustomerCommunication.status,
                    CustomerCommunication.sent_at,
                    CustomerCommunication.delivered_at,
                )
            )
        ).all()
        check = await verify_feed(session, ZoneInfo("UTC"))
        delivered = await session.scalar(select(func.sum(CommunicationAnalytics.delivered)))
        sent = await session.scalar(select(func.sum(CommunicationAnalytics.sent)))
    assert [r.status for r in rows] == [MessageStatus.DELIVERED.value] * 4
    assert all(r.delivered_at is not None and r.delivered_at == r.sent_at for r in rows)
    assert (sent, delivered) == (4, 4) and check.drift == [], check.drift


async def test_only_marketing_email_carries_the_one_click_unsubscribe_headers(database_url: str) -> None:
    """A mailbox's Unsubscribe button opts the customer out of email altogether: on an appointment's email it
    would take their reminders with it, so service email carries no List-Unsubscribe link."""
    from domain.delivery.outbox import ClaimedMessage
    from switchboard.delivery import build_dispatcher
    from switchboard.settings import Settings
    from switchboard.wiring import build_container

    container = build_container(Settings(database_url=database_url))  # type: ignore[arg-type]
    try:
        dispatcher = build_dispatcher(container, {}, {})

        def email(category: str, channel: str = "email") -> ClaimedMessage:
            return ClaimedMessage(
                1,
                7,
                channel,
                "smtp",
                "a@example.com",
                "Hi",
                "Hi",
                None,
                "k",
                1,
                None,
                None,
                category=category,
            )

        link = dispatcher.unsubscribe_url(email("marketing"))
        assert link is not None and "/unsubscribe/" in link
        assert dispatcher.unsubscribe_url(email("transactional")) is None
        assert dispatcher.unsubscribe_url(email("marketing", channel="sms")) is None
    finally:
        await container.close()
