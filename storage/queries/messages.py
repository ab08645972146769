"""Messages as the API lists them: newest first with filters and keyset paging, and one with its status history."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVarTuple

from sqlalchemy import ColumnElement, Row, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.clock import utc_now
from domain.vocabulary import STATUS_PROGRESS, Channel, MessageStatus
from storage.database import Database
from storage.message_months import recent_since
from storage.models import (
    BulkMessaging,
    Customer,
    CustomerCommunication,
    MessageStatusEvent,
    MessageTemplate,
)
from storage.sql import contains_folded, dialect_of, equals_folded, name_has_words

Columns = TypeVarTuple("Columns")


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
    async with database.read_sessions() as session:
        cursor = None
        if before_id is not None:
            # Keyset paging on (time, id): exact even when many messages share a timestamp.
            cursor = await _message_by_id(session, before_id)
            if cursor is None:
                return []
        rows = await _newest_first(session, query, cursor, limit)
        return [_record(row[0]) for row in rows]


async def message_with_history(
    database: Database, message_id: int
) -> tuple[MessageRecord, list[StatusChange]] | None:
    """The message and every status it went through, oldest first; None when there is no such message."""
    async with database.read_sessions() as session:
        row = await _message_by_id(session, message_id)
        if row is None:
            return None
        events = _in_order(await session.scalars(select(MessageStatusEvent).where(_history_of(row))))
        history = [StatusChange(e.status, e.source, e.occurred_at, e.error_code, e.detail) for e in events]
        return _record(row), history


async def _message_by_id(session: AsyncSession, message_id: int) -> CustomerCommunication | None:
    """The message with this id. An id does not say its month: on PostgreSQL the recent months are read
    first (a handful of partitions, where nearly every message looked up is), then every month."""
    if dialect_of(session) == "postgresql":
        recent = await session.scalar(
            select(CustomerCommunication).where(
                CustomerCommunication.id == message_id,
                CustomerCommunication.created_at >= recent_since(utc_now()),
            )
        )
        if recent is not None:
            return recent
    return await session.get(CustomerCommunication, message_id)


async def _newest_first(
    session: AsyncSession, query: Select[*Columns], cursor: CustomerCommunication | None, limit: int
) -> Sequence[Row[*Columns]]:
    """A page of `query` (newest first by time, then id, limited to `limit`) after `cursor`.

    On PostgreSQL the recent months are read first: the month before the cursor's (or before now) and every
    later one, a handful of partitions, where a page of the log nearly always is whole. Only a page they
    leave short reads on into the older months, every one of them (merging each month's time index is what
    lets a page go on across months). The two parts do not overlap in time, so together they are the page
    in order. SQLite has one table: one statement."""
    if cursor is not None:
        query = query.where(_older_than(cursor))
    if dialect_of(session) != "postgresql":
        return (await session.execute(query)).all()
    written = CustomerCommunication.created_at
    since = recent_since(cursor.created_at if cursor is not None else utc_now())
    rows = list((await session.execute(query.where(written >= since))).all())
    if len(rows) < limit:
        rows += (await session.execute(query.where(written < since).limit(limit - len(rows)))).all()
    return rows


def _older_than(cursor: CustomerCommunication) -> ColumnElement[bool]:
    """The messages after `cursor` in newest-first order, by (time, id); its time given, not looked up by
    id, so PostgreSQL leaves out the months after it."""
    written = CustomerCommunication.created_at
    return or_(
        written < cursor.created_at,
        and_(written == cursor.created_at, CustomerCommunication.id < cursor.id),
    )


_PROGRESS = {status.value: rank for status, rank in STATUS_PROGRESS.items()}


def _in_order(events: Iterable[MessageStatusEvent]) -> list[MessageStatusEvent]:
    """Oldest first, by the second: providers date their receipts in whole seconds (WhatsApp, Twilio) while
    our own steps carry fractions, so "delivered" at 10:00:05 would sort before our "sent" at 10:00:05.4.
    Within a second, a message's own progress decides (queued, sent, delivered, read: a receipt may be
    recorded before the step it follows), then the order they were recorded in."""
    return sorted(
        events,
        key=lambda e: (
            e.occurred_at.replace(microsecond=0),
            _PROGRESS.get(e.status, 9),
            e.id,
        ),
    )


def _history_of(message: CustomerCommunication) -> ColumnElement[bool]:
    """The message's status history, named by its creation time too: on PostgreSQL the history is kept by
    the month of its message, so this reads one month's partition, not every month's."""
    return and_(
        MessageStatusEvent.communication_id == message.id,
        MessageStatusEvent.message_created_at == message.created_at,
    )


def _customer_condition(
    text: str, *, whole_contacts: bool = True, phones: Sequence[str] = ()
) -> ColumnElement[bool]:
    """Name, email or phone containing `text` (case-insensitive), or `#123` for a customer number. Without
    `whole_contacts` (staff who see contact details shortened), an email must be all of `text` and a phone
    number one of `phones` (the text read as one, E.164), so that neither can be found out a character at a time.

    The text only ever travels as a bound parameter; LIKE wildcards in it are escaped.
    """
    compact = text.replace(" ", "")
    if re.fullmatch(r"#[0-9]{1,18}", compact):
        return Customer.id == int(compact[1:])
    conditions = [
        name_has_words(Customer.name, text),
        contains_folded(Customer.email, text)
        if whole_contacts
        else equals_folded(Customer.email, text.strip()),
        equals_folded(Customer.external_ref, text.strip()),  # the practice's own patient number, in any case
    ]
    if compact.isascii() and compact.isdigit() and len(compact) < 19:
        conditions.append(Customer.id == int(compact))
    digits = re.sub(r"[\s().\-/]", "", text)
    # Numbers are stored as E.164 (+4915...); a national 0151... is matched without its leading zeros.
    number = digits.lstrip("+").lstrip("0")
    if re.fullmatch(r"\+?[0-9]+", digits) and len(number) >= 3:
        if whole_contacts:
            conditions.append(Customer.phone_e164.contains(number, autoescape=True))
    if phones and not whole_contacts:
        conditions.append(Customer.phone_e164.in_(phones))
    return or_(*conditions)


async def message_log_customers(
    database: Database, text: str, limit: int, *, whole_contacts: bool = True, phones: Sequence[str] = ()
) -> list[tuple[int, str]]:
    """The message log's customer filter: (id, name) of customers whose name, email or phone contains
    `text`, or whose number it is, by name (see `_customer_condition` for `whole_contacts`)."""
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                select(Customer.id, Customer.name)
                .where(_customer_condition(text, whole_contacts=whole_contacts, phones=phones))
                .order_by(Customer.name, Customer.id)
                .limit(limit)
            )
        ).all()
    return [(id, name) for id, name in rows]


@dataclass(frozen=True)
class MessageLogFilters:
    channel: str | None = None
    status: str | None = None
    direction: str | None = None
    customer_id: int | None = None
    customers: list[int] | None = None  # from a customer search
    before: int | None = None
    campaign_id: int | None = None


async def message_log(
    database: Database, filters: MessageLogFilters, limit: int
) -> list[tuple[MessageRecord, str | None]]:
    """The dashboard's message log: newest first by time (ties by id), each with its customer's name.

    The page after `before` starts at that message's time and id, so paging stays exact however many
    messages share a moment.
    """
    cc = CustomerCommunication
    query = (
        select(cc, Customer.name)
        .outerjoin(Customer, Customer.id == cc.customer_id)
        .order_by(cc.created_at.desc(), cc.id.desc())
        .limit(limit)
    )
    for column, value in (
        (cc.channel, filters.channel),
        (cc.status, filters.status),
        (cc.direction, filters.direction),
        (cc.customer_id, filters.customer_id),
        (cc.campaign_id, filters.campaign_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.customers is not None:
        query = query.where(cc.customer_id.in_(filters.customers))
    async with database.read_sessions() as session:
        cursor = None
        if filters.before is not None:
            cursor = await _message_by_id(session, filters.before)
            if cursor is None:
                return []
        rows = await _newest_first(session, query, cursor, limit)
    return [(_record(m), name) for m, name in rows]


@dataclass(frozen=True)
class MessageDetail:
    """One message as its page shows it: what it was, for whom, from which campaign and template."""

    message: MessageRecord
    history: list[StatusChange]
    customer: tuple[int, str] | None  # (id, name)
    campaign_slug: str | None
    template: tuple[str, str] | None  # (name, locale)
    currency: str | None


async def message_detail(database: Database, message_id: int) -> MessageDetail | None:
    async with database.read_sessions() as session:
        message = await _message_by_id(session, message_id)
        if message is None:
            return None
        customer = await session.get(Customer, message.customer_id) if message.customer_id else None
        campaign = await session.get(BulkMessaging, message.campaign_id) if message.campaign_id else None
        template = await session.get(MessageTemplate, message.template_id) if message.template_id else None
        events = _in_order(await session.scalars(select(MessageStatusEvent).where(_history_of(message))))
        return MessageDetail(
            _record(message),
            [StatusChange(e.status, e.source, e.occurred_at, e.error_code, e.detail) for e in events],
            (customer.id, customer.name) if customer else None,
            campaign.slug if campaign else None,
            (template.name, template.locale) if template else None,
            message.currency,
        )
