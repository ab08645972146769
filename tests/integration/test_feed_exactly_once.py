"""Each message counts once in each daily figure, whatever order its events arrive in.

The worker records an acceptance; receipts say sent, delivered, read or failed; any of them may come
first, twice, or be retried after a failed transaction. Every interleaving is driven through the outbox
on both engines, and the daily figures must equal a recount of the messages (`analytics verify`).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select

from domain.delivery.outbox import Accepted, Dead
from domain.delivery.ports import DeliveryReceipt
from domain.vocabulary import MessageStatus
from storage.database import Database
from storage.message_feed import verify_feed
from storage.models import CommunicationAnalytics, CustomerCommunication
from storage.unit_of_work import SqlUnitOfWork

TZ = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 11, 30, 22, 50, tzinfo=UTC)  # 23:50 in Berlin: receipts come on the next local day
COST = 7_900

Step = Callable[[SqlUnitOfWork, int], Awaitable[object]]


def receipt(message_id: int, status: MessageStatus, minutes: int, cost: int | None = None) -> Step:
    async def apply(uow: SqlUnitOfWork, _: int) -> object:
        return await uow.outbox.apply_receipts(
            [
                DeliveryReceipt(
                    "twilio",
                    f"SM{message_id}",
                    status,
                    T0 + timedelta(minutes=minutes),
                    our_message_id=message_id,
                    cost_micros=cost,
                )
            ]
        )

    return apply


def accepted(message_id: int) -> Step:
    async def record(uow: SqlUnitOfWork, _: int) -> object:
        await uow.outbox.record_outcomes(
            [Accepted(message_id, f"SM{message_id}", MessageStatus.QUEUED, T0 + timedelta(seconds=1))]
        )
        return None

    return record


async def sending_message(database: Database, number: int) -> int:
    """A message a worker has claimed and handed to the provider, whose acceptance is not yet recorded."""
    async with database.engine.begin() as connection:
        result = await connection.execute(
            insert(CustomerCommunication)
            .values(
                channel="sms",
                provider="twilio",
                direction="outbound",
                source="campaign",
                source_ref="feed",
                category="marketing",
                idempotency_key=f"feed:{number}",
                to_address=f"+4915100{number:06d}",
                body="hello",
                status="sending",
                attempts=1,
                cost_micros=COST,
                currency="USD",
                claimed_by="w1",
                claimed_until=T0 + timedelta(minutes=5),
                created_at=T0 - timedelta(seconds=5),
            )
            .returning(CustomerCommunication.id)
        )
        return int(result.scalar_one())


EVENTS = {
    "accepted": lambda m: accepted(m),
    "sent": lambda m: receipt(m, MessageStatus.SENT, 0),
    "delivered": lambda m: receipt(m, MessageStatus.DELIVERED, 20),
    "read": lambda m: receipt(m, MessageStatus.READ, 40),
}
ORDERS = list(itertools.permutations(EVENTS))


async def test_every_order_of_acceptance_and_receipts_counts_each_figure_once(database: Database) -> None:
    messages = []
    for number, order in enumerate(ORDERS):
        message_id = await sending_message(database, number)
        messages.append(message_id)
        # Every event once in this order, then each of them again (a provider retry, a replayed batch).
        for name in (*order, *order):
            async with SqlUnitOfWork(database, business_tz="Europe/Berlin") as uow:
                await EVENTS[name](message_id)(uow, message_id)
                await uow.commit()
    async with database.sessions() as session:
        check = await verify_feed(session, TZ)
        totals = (
            await session.execute(
                select(
                    func.sum(CommunicationAnalytics.sent),
                    func.sum(CommunicationAnalytics.delivered),
                    func.sum(CommunicationAnalytics.read),
                    func.sum(CommunicationAnalytics.cost_micros),
                )
            )
        ).one()
    assert check.drift == []
    assert tuple(totals) == (len(ORDERS), len(ORDERS), len(ORDERS), len(ORDERS) * COST)


@pytest.mark.parametrize("failure", [MessageStatus.FAILED, MessageStatus.UNDELIVERED])
async def test_a_failed_receipt_before_or_after_the_acceptance_counts_once(
    database: Database, failure: MessageStatus
) -> None:
    orders = [("accepted", "failure"), ("failure", "accepted"), ("failure", "accepted", "failure")]
    for number, order in enumerate(orders):
        message_id = await sending_message(database, 100 + number)
        steps = {"accepted": accepted(message_id), "failure": receipt(message_id, failure, 3)}
        for name in order:
            async with SqlUnitOfWork(database, business_tz="Europe/Berlin") as uow:
                await steps[name](uow, message_id)
                await uow.commit()
    async with database.sessions() as session:
        check = await verify_feed(session, TZ)
        failed, sent = (
            await session.execute(
                select(func.sum(CommunicationAnalytics.failed), func.sum(CommunicationAnalytics.sent))
            )
        ).one()
    assert check.drift == [] and failed == len(orders) and sent == len(orders)


async def test_a_receipt_for_a_message_given_up_in_doubt_counts_it_sent_and_delivered(
    database: Database,
) -> None:
    """The last try timed out after the request left and the worker gave up; the provider had it after all."""
    message_id = await sending_message(database, 150)
    async with SqlUnitOfWork(database, business_tz="Europe/Berlin") as uow:
        await uow.outbox.record_outcomes(
            [Dead(message_id, T0 + timedelta(seconds=30), "gave up after 8 attempts: in doubt: timed out")]
        )
        await uow.commit()
    for _ in range(2):
        async with SqlUnitOfWork(database, business_tz="Europe/Berlin") as uow:
            await receipt(message_id, MessageStatus.DELIVERED, 2)(uow, message_id)
            await uow.commit()
    async with database.sessions() as session:
        check = await verify_feed(session, TZ)
        message = await session.get(CustomerCommunication, message_id)
        sent, delivered = (
            await session.execute(
                select(func.sum(CommunicationAnalytics.sent), func.sum(CommunicationAnalytics.delivered))
            )
        ).one()
    assert message is not None and message.status == "delivered" and message.sent_at is not None
    assert check.drift == [] and (sent, delivered) == (1, 1)


async def test_a_cost_stated_later_moves_the_day_cost_once(database: Database) -> None:
    message_id = await sending_message(database, 200)
    for step in (accepted(message_id), receipt(message_id, MessageStatus.DELIVERED, 5, cost=12_000)):
        for _ in range(2):
            async with SqlUnitOfWork(database, business_tz="Europe/Berlin") as uow:
                await step(uow, message_id)
                await uow.commit()
    async with database.sessions() as session:
        check = await verify_feed(session, TZ)
        cost = await session.scalar(select(func.sum(CommunicationAnalytics.cost_micros)))
    assert check.drift == [] and cost == 12_000


async def test_verify_finds_and_repairs_drift(database: Database) -> None:
    message_id = await sending_message(database, 300)
    async with SqlUnitOfWork(database, business_tz="Europe/Berlin") as uow:
        await accepted(message_id)(uow, message_id)
        await uow.commit()
    async with database.sessions() as session:
        row = await session.scalar(select(CommunicationAnalytics))
        assert row is not None
        row.sent += 5  # what the old double counting left behind
        await session.commit()
    async with database.sessions() as session:
        found = await verify_feed(session, TZ)
        assert [(d.figure, d.recorded, d.recounted) for d in found.drift] == [("sent", 6, 1)]
        repaired = await verify_feed(session, TZ, repair=True)
        await session.commit()
    assert repaired.repaired
    async with database.sessions() as session:
        assert (await verify_feed(session, TZ)).drift == []
