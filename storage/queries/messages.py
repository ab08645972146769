"""Messages as the API lists them: newest first with filters and keyset paging, and one with its status history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select

from domain.vocabulary import Channel, MessageStatus
from storage.database import Database
from storage.models import CustomerCommunication, MessageStatusEvent


@dataclass(frozen=True)
class MessageRecord:
    """One message in or out, as written to the outbox and moved on by the worker and receipts."""

    id: int
    customer_id: int | None
    channel: str
    provider: str
    direction: str
    source: str
    category: str
    status: str
    status_reason: str | None
    error_code: str | None
    to_address: str
    subject: str | None
    body: str
    campaign_id: int | None
    attempts: int
    segments: int | None
    encoding: str | None
    cost_micros: int | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    explanation: str | None  # why it was held back or given up, in words


@dataclass(frozen=True)
class StatusChange:
    status: str
    source: str
    occurred_at: datetime
    error_code: str | None
    detail: str | None


def _record(row: CustomerCommunication) -> MessageRecord:
    return MessageRecord(
        id=row.id,
        customer_id=row.customer_id,
        channel=row.channel,
        provider=row.provider,
        direction=row.direction,
        source=row.source,
        category=row.category,
        status=row.status,
        status_reason=row.status_reason,
        error_code=row.error_code,
        to_address=row.to_address,
        subject=row.subject,
        body=row.body,
        campaign_id=row.campaign_id,
        attempts=row.attempts,
        segments=row.segments,
        encoding=row.encoding,
        cost_micros=row.cost_micros,
        created_at=row.created_at,
        sent_at=row.sent_at,
        delivered_at=row.delivered_at,
        read_at=row.read_at,
        explanation=(row.payload or {}).get("explanation"),
    )


async def message_page(
    database: Database,
    *,
    customer_id: int | None = None,
    status: MessageStatus | None = None,
    channel: Channel | None = None,
    campaign_id: int | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[MessageRecord]:
    """Newest first by when each was written; `before_id` (the last id of the previous page) pages on."""
    written = CustomerCommunication.created_at
    query = (
        select(CustomerCommunication).order_by(written.desc(), CustomerCommunication.id.desc()).limit(limit)
    )
    if customer_id is not None:
        query = query.where(CustomerCommunication.customer_id == customer_id)
    if status is not None:
        query = query.where(CustomerCommunication.status == status.value)
    if channel is not None:
        query = query.where(CustomerCommunication.channel == channel.value)
    if campaign_id is not None:
        query = query.where(CustomerCommunication.campaign_id == campaign_id)
    if before_id is not None:
        # Keyset paging on (time, id): exact even when many messages share a timestamp.
        cursor = select(written).where(CustomerCommunication.id == before_id).scalar_subquery()
        query = query.where(
            or_(written < cursor, and_(written == cursor, CustomerCommunication.id < before_id))
        )
    async with database.read_sessions() as session:
        return [_record(row) for row in await session.scalars(query)]


async def message_with_history(
    database: Database, message_id: int
) -> tuple[MessageRecord, list[StatusChange]] | None:
    """The message and every status it went through, oldest first; None when there is no such message."""
    async with database.read_sessions() as session:
        row = await session.get(CustomerCommunication, message_id)
        if row is None:
            return None
        events = await session.scalars(
            select(MessageStatusEvent)
            .where(MessageStatusEvent.communication_id == message_id)
            .order_by(MessageStatusEvent.occurred_at, MessageStatusEvent.id)
        )
        history = [StatusChange(e.status, e.source, e.occurred_at, e.error_code, e.detail) for e in events]
        return _record(row), history
