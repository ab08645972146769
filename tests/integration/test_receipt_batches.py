"""Group-committed receipts: concurrent webhooks share transactions, yet each status applies exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import func, insert, select

from api.webhooks.routes import _receive_receipts
from providers.twilio.webhooks import STATUS_KIND as TWILIO_STATUS
from providers.twilio.webhooks import twilio_delivery
from storage.database import Database
from storage.models import CommunicationAnalytics, CustomerCommunication, MessageStatusEvent, WebhookInbox
from switchboard.settings import Settings
from switchboard.wiring import build_container


async def add_messages(database: Database, count: int) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "channel": "sms",
            "provider": "twilio",
            "direction": "outbound",
            "source": "campaign",
            "source_ref": "b",
            "category": "marketing",
            "idempotency_key": f"b{i}",
            "to_address": "+4915100000000",
            "body": "x",
            "status": "queued",
            "attempts": 1,
            "provider_message_id": f"SM{i:032x}",
            "created_at": now,
            "sent_at": now,
        }
        for i in range(count)
    ]
    async with database.engine.begin() as connection:
        await connection.execute(insert(CustomerCommunication), rows)


def status(i: int, value: str) -> object:
    return twilio_delivery(
        TWILIO_STATUS,
        {"MessageSid": f"SM{i:032x}", "MessageStatus": value, "AccountSid": "AC1"},
        ("MessageSid", "MessageStatus"),
    )


async def test_concurrent_receipts_share_batches_and_apply_once(database_url: str) -> None:
    container = build_container(Settings(database_url=database_url))
    await add_messages(container.database, 40)
    deliveries = [status(i, "sent") for i in range(40)] + [status(i, "delivered") for i in range(40)]
    deliveries += deliveries[:20]  # provider retries, arriving alongside the originals
    outcomes = await asyncio.gather(*(_receive_receipts(container, d) for d in deliveries))  # type: ignore[arg-type]
    assert sum(o.duplicate for o in outcomes) == 20
    assert container.receipt_batcher.batches < len(deliveries) / 4, "webhooks should share transactions"
    async with container.database.sessions() as session:
        statuses = dict(
            (
                await session.execute(
                    select(CustomerCommunication.status, func.count()).group_by(CustomerCommunication.status)
                )
            ).all()
        )
        events = await session.scalar(select(func.count()).select_from(MessageStatusEvent))
        delivered = await session.scalar(select(func.sum(CommunicationAnalytics.delivered)))
        applied = await session.scalar(
            select(func.count()).select_from(WebhookInbox).where(WebhookInbox.status == "applied")
        )
    await container.close()
    assert statuses == {"delivered": 40} and events == 80 and delivered == 40 and applied == 80


async def test_a_receipt_for_an_unknown_message_does_not_hold_up_the_others(database_url: str) -> None:
    container = build_container(Settings(database_url=database_url))
    await add_messages(container.database, 5)
    deliveries = [status(i, "delivered") for i in range(5)] + [status(999, "delivered")]
    outcomes = await asyncio.gather(*(_receive_receipts(container, d) for d in deliveries))  # type: ignore[arg-type]
    assert [o.failed for o in outcomes] == [False] * 5 + [True]
    async with container.database.sessions() as session:
        kept = dict(
            (
                await session.execute(select(WebhookInbox.status, func.count()).group_by(WebhookInbox.status))
            ).all()
        )
        delivered = await session.scalar(
            select(func.count())
            .select_from(CustomerCommunication)
            .where(CustomerCommunication.status == "delivered")
        )
    await container.close()
    assert kept == {"applied": 5, "failed": 1} and delivered == 5
