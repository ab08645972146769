"""Claiming due messages on SQLite and PostgreSQL: the limit holds, and an opt-out is checked at the last moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from domain.delivery.ports import DeliveryReceipt
from domain.vocabulary import MessageStatus
from storage.database import Database
from storage.models import (
    BulkMessaging,
    CommunicationPreference,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    CustomerConsent,
    MessageStatusEvent,
)
from storage.unit_of_work import SqlUnitOfWork

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


async def add_due(
    database: Database, count: int, *, customer_id: int | None = None, source: str = "campaign"
) -> None:
    rows = [
        {
            "customer_id": customer_id,
            "channel": "sms",
            "provider": "twilio",
            "direction": "outbound",
            "source": source,
            "source_ref": "claims",
            "category": "marketing",
            "idempotency_key": f"{source}:claims:{customer_id}:{i}",
            "to_address": f"+4915100{i:06d}",
            "body": f"Hello {i}",
            "status": "planned",
            "next_attempt_at": NOW - timedelta(minutes=1),
            "attempts": 0,
            "created_at": NOW - timedelta(hours=1),
        }
        for i in range(count)
    ]
    async with database.engine.begin() as connection:
        await connection.execute(insert(CustomerCommunication), rows)


async def claim(database: Database, limit: int) -> list[int]:
    async with SqlUnitOfWork(database) as uow:
        claimed = await uow.outbox.claim_due("w1", NOW, limit, LEASE)
        await uow.commit()
    return [message.id for message in claimed]


async def test_a_claim_takes_no_more_than_its_limit(database: Database) -> None:
    await add_due(database, 20)
    first = await claim(database, 3)
    second = await claim(database, 5)
    assert len(first) == 3 and len(second) == 5
    assert not set(first) & set(second)


async def test_a_customer_who_opted_out_after_planning_is_stopped_at_the_claim(database: Database) -> None:
    async with database.sessions() as session:
        customer = Customer(name="Late Stopper", phone_e164="+4915100000777", created_at=NOW)
        session.add(customer)
        await session.flush()
        customer_id = customer.id
        await session.commit()
    await add_due(database, 2, customer_id=customer_id)
    await add_due(database, 1, customer_id=customer_id, source="system")  # the STOP confirmation itself
    # The opt-out lands while the messages are not "planned" (say, mid-send and then retried), so the
    # withdrawal at opt-out time did not see them: the claim is the last line.
    async with database.sessions() as session:
        record = ConsentRecord(
            customer_id=customer_id, channel="sms", status="opted_out", source="sms_keyword", recorded_at=NOW
        )
        session.add(record)
        await session.flush()
        session.add(
            CustomerConsent(
                customer_id=customer_id,
                channel="sms",
                status="opted_out",
                source="sms_keyword",
                record_id=record.id,
                changed_at=NOW,
            )
        )
        await session.commit()

    claimed = await claim(database, 10)

    async with database.sessions() as session:
        rows = {
            row.id: row
            for row in await session.scalars(
                select(CustomerCommunication).where(CustomerCommunication.customer_id == customer_id)
            )
        }
        events = (
            await session.execute(
                select(
                    MessageStatusEvent.communication_id, MessageStatusEvent.status, MessageStatusEvent.source
                )
            )
        ).all()
    system = [i for i, row in rows.items() if row.source == "system"]
    assert claimed == system
    stopped = [i for i, row in rows.items() if row.source == "campaign"]
    assert all((rows[i].status, rows[i].status_reason) == ("suppressed", "opted_out") for i in stopped)
    assert sorted(e.communication_id for e in events if e.source == "consent") == sorted(stopped)

    # Had the provider taken one after all (an in-doubt send), its receipt is still recorded.
    async with SqlUnitOfWork(database) as uow:
        [result] = await uow.outbox.apply_receipts(
            [DeliveryReceipt("twilio", "SMlate", MessageStatus.DELIVERED, NOW, our_message_id=stopped[0])]
        )
        await uow.commit()
    assert result.applied
    async with database.sessions() as session:
        status = await session.scalar(
            select(CustomerCommunication.status).where(CustomerCommunication.id == stopped[0])
        )
    assert status == "delivered"


async def test_a_customer_who_asked_for_no_marketing_after_planning_gets_none_but_their_reminders(
    database: Database,
) -> None:
    """The walk set a weekly marketing limit of 0 on the dashboard while a campaign's SMS waited for quiet
    hours to end; at 08:00 it went anyway (only opt-outs were checked at the claim)."""
    async with database.sessions() as session:
        customer = Customer(name="Lena Bauer", phone_e164="+4915100000778", created_at=NOW)
        session.add(customer)
        await session.flush()
        customer_id = customer.id
        session.add(CommunicationPreference(customer_id=customer_id, marketing_max_per_week=0))
        await session.commit()
    await add_due(database, 2, customer_id=customer_id)  # campaign marketing, planned before
    await add_due(database, 1, customer_id=customer_id, source="notification")
    async with database.engine.begin() as connection:  # the reminder is transactional
        await connection.execute(
            update(CustomerCommunication)
            .where(CustomerCommunication.source == "notification")
            .values(category="transactional")
        )

    claimed = await claim(database, 10)

    async with database.sessions() as session:
        rows = {
            row.id: row
            for row in await session.scalars(
                select(CustomerCommunication).where(CustomerCommunication.customer_id == customer_id)
            )
        }
        said = set(
            await session.scalars(
                select(MessageStatusEvent.detail).where(MessageStatusEvent.source == "consent")
            )
        )
    assert claimed == [i for i, row in rows.items() if row.category == "transactional"]
    stopped = [row for row in rows.values() if row.category == "marketing"]
    assert len(stopped) == 2
    assert all((r.status, r.status_reason) == ("suppressed", "customer_marketing_limit") for r in stopped)
    assert said == {"Not sent: the customer asked for no marketing after it was planned."}


async def test_a_campaigns_fallback_is_not_held_back_by_the_limit_its_own_first_message_used(
    database: Database,
) -> None:
    """A limit of 1: the campaign's WhatsApp message went out but was not delivered; its SMS fallback counts
    the week without it, as planning did, so it goes (the review's finding)."""
    async with database.sessions() as session:
        customer = Customer(name="Mia Roth", phone_e164="+4915100000780", created_at=NOW)
        campaign = BulkMessaging(slug="winter", name="Winter", template_name="winter", status="running")
        session.add_all([customer, campaign])
        await session.flush()
        customer_id, campaign_id = customer.id, campaign.id
        session.add(CommunicationPreference(customer_id=customer_id, marketing_max_per_week=1))
        session.add(
            CustomerCommunication(
                customer_id=customer_id,
                campaign_id=campaign_id,
                channel="whatsapp",
                provider="whatsapp_cloud",
                direction="outbound",
                source="campaign",
                category="marketing",
                idempotency_key="winter:first",
                to_address="4915100000780",
                body="Winter offer",
                status="undelivered",
                created_at=NOW - timedelta(hours=2),
                sent_at=NOW - timedelta(hours=2),
            )
        )
        await session.commit()
    await add_due(database, 1, customer_id=customer_id)
    async with database.engine.begin() as connection:  # the fallback is the same campaign's
        await connection.execute(
            update(CustomerCommunication)
            .where(CustomerCommunication.idempotency_key.like("campaign:claims:%"))
            .values(campaign_id=campaign_id)
        )
    claimed = await claim(database, 10)
    assert len(claimed) == 1


@pytest.mark.parametrize(("limit", "sent_this_week", "goes"), [(2, 2, False), (2, 1, True), (1, 0, True)])
async def test_a_weekly_marketing_limit_set_after_planning_holds_back_what_would_pass_it(
    database: Database, limit: int, sent_this_week: int, goes: bool
) -> None:
    """A limit of 2 a week set after a campaign planned its message: with 2 marketing messages already gone
    out to the customer this week, the third is held back at the claim; with 1 gone, it goes. What is only
    planned, or went out more than a week ago, does not count."""
    async with database.sessions() as session:
        customer = Customer(name="Jonas Keller", phone_e164="+4915100000779", created_at=NOW)
        session.add(customer)
        await session.flush()
        customer_id = customer.id
        session.add(CommunicationPreference(customer_id=customer_id, marketing_max_per_week=limit))
        this_week = [NOW - timedelta(days=2), NOW - timedelta(days=1)][:sent_this_week]
        a_week_ago = NOW - timedelta(days=9)  # not counted
        earlier = [*((at, at) for at in this_week), (a_week_ago, a_week_ago)]
        for n, (created, sent) in enumerate(earlier):
            session.add(
                CustomerCommunication(
                    customer_id=customer_id,
                    channel="email",
                    provider="smtp",
                    direction="outbound",
                    source="campaign",
                    category="marketing",
                    idempotency_key=f"earlier:{n}",
                    to_address="jonas@example.com",
                    body="Earlier offer",
                    status="delivered",
                    created_at=created,
                    sent_at=sent,
                )
            )
        await session.commit()
    await add_due(database, 1, customer_id=customer_id)

    claimed = await claim(database, 10)

    async with database.sessions() as session:
        [due] = await session.scalars(
            select(CustomerCommunication).where(
                CustomerCommunication.idempotency_key.like("campaign:claims:%")
            )
        )
        said = set(
            await session.scalars(
                select(MessageStatusEvent.detail).where(MessageStatusEvent.source == "consent")
            )
        )
    if goes:
        assert claimed == [due.id] and due.status == "sending" and not said
    else:
        assert claimed == [] and (due.status, due.status_reason) == ("suppressed", "customer_marketing_limit")
        assert said == {
            "Not sent: the customer's weekly limit of marketing messages was reached after it was planned."
        }
