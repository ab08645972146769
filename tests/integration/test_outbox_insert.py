"""The bulk outbox insert below SQLAlchemy, on SQLite and PostgreSQL: transactional, exact counts, same values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import func, select

from domain.delivery.outbox import OutboxEntry
from domain.vocabulary import Channel, MessageCategory, MessageSource, MessageStatus
from storage.database import Database
from storage.models import CustomerCommunication
from storage.outbox_insert import insert_outbox_entries

NOW = datetime(2026, 11, 25, 9, 30, 15, 123456, tzinfo=UTC)


def entry(n: int, **changes: object) -> OutboxEntry:
    values: dict[str, object] = {
        "customer_id": None,
        "channel": Channel.EMAIL,
        "source": MessageSource.CAMPAIGN,
        "source_ref": "insert-test",
        "category": MessageCategory.MARKETING,
        "to_address": f"c{n}@example.com",
        "body": f"Hello {n} – grüße",
        "subject": "Spring offer",
        "send_at": NOW + timedelta(hours=1),
        "payload": {"html_body": "<p>Hello</p>", "n": n},
    }
    values.update(changes)
    return OutboxEntry(**values)  # type: ignore[arg-type]


async def count(database: Database) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(CustomerCommunication)) or 0)


async def test_the_insert_is_part_of_the_callers_transaction_even_as_its_first_statement(
    database: Database,
) -> None:
    async with database.sessions() as session:
        inserted = await insert_outbox_entries(session, [entry(1)], NOW)
        assert inserted == {"planned": 1}
        await session.rollback()
    assert await count(database) == 0


async def test_counts_only_new_rows_and_stores_what_the_orm_reads_back(database: Database) -> None:
    berlin = timezone(timedelta(hours=1))
    batch = [
        entry(1),
        entry(1),  # the same key twice in one call
        entry(2, send_at=datetime(2026, 11, 25, 11, 0, tzinfo=berlin), subject="x" * 300),
        entry(3, status=MessageStatus.SUPPRESSED, status_reason="opted_out", payload={}),
    ]
    async with database.sessions() as session:
        first = await insert_outbox_entries(session, batch, NOW)
        await session.commit()
    async with database.sessions() as session:
        again = await insert_outbox_entries(session, [entry(1), entry(4)], NOW)
        await session.commit()
    assert (first, again) == ({"planned": 2, "suppressed": 1}, {"planned": 1})

    async with database.sessions() as session:
        rows = {
            row.to_address: row
            for row in await session.scalars(select(CustomerCommunication).order_by(CustomerCommunication.id))
        }
    one, two, three = rows["c1@example.com"], rows["c2@example.com"], rows["c3@example.com"]
    assert one.body == "Hello 1 – grüße" and one.payload == {"html_body": "<p>Hello</p>", "n": 1}
    assert one.next_attempt_at == NOW + timedelta(hours=1) and one.created_at == NOW
    assert two.next_attempt_at == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert two.subject == "x" * 255
    assert (three.status, three.status_reason, three.next_attempt_at, three.payload) == (
        "suppressed",
        "opted_out",
        None,
        None,
    )
    assert one.idempotency_key == entry(1).idempotency_key and one.provider == "smtp"
