"""A message's status history reads in the order it happened, on SQLite and PostgreSQL, though providers date
their receipts in whole seconds and our own steps carry fractions of one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.database import Database
from storage.models import CustomerCommunication, MessageStatusEvent
from storage.queries.messages import message_with_history

AT = datetime(2026, 12, 6, 10, 0, 5, tzinfo=UTC)


async def test_a_receipt_dated_to_the_second_follows_the_step_it_answers(database: Database) -> None:
    async with database.sessions() as session:
        message = CustomerCommunication(
            channel="whatsapp", provider="whatsapp_cloud", direction="outbound", source="manual",
            to_address="+4915100000001", body="Hallo", status="read", created_at=AT - timedelta(seconds=1),
        )  # fmt: skip
        session.add(message)
        await session.flush()
        for status, source, at in (
            # Recorded in this order: Meta's "delivered" (10:00:05, whole seconds) reached us before the
            # worker had written its "queued" and "sent" of 10:00:05.4 and .6; "read" came a minute later.
            ("planned", "outbox", AT - timedelta(seconds=1)),
            ("delivered", "whatsapp_cloud", AT),
            ("queued", "outbox", AT + timedelta(milliseconds=400)),
            ("sent", "whatsapp_cloud", AT + timedelta(milliseconds=600)),
            ("read", "whatsapp_cloud", AT + timedelta(minutes=1)),
        ):
            session.add(
                MessageStatusEvent(
                    communication_id=message.id,
                    message_created_at=message.created_at,
                    status=status,
                    source=source,
                    occurred_at=at,
                )
            )
        await session.commit()
        message_id = message.id
    found = await message_with_history(database, message_id)
    assert found is not None
    assert [change.status for change in found[1]] == ["planned", "queued", "sent", "delivered", "read"]
