"""The conversation store: who wrote to us, their inbound messages, chat sessions, replies and queued answers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Self
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.conversations.attachments import FileOutcome, KeptFile
from domain.conversations.desk import LIVE_STATUSES, REOPEN_WITHIN, AgentLoad
from domain.conversations.model import ChatReplyTarget
from domain.conversations.newcomers import Newcomer
from domain.delivery.outbox import OutboxEntry
from domain.delivery.ports import InboundMessage
from domain.vocabulary import (
    PROVIDER_FOR_CHANNEL,
    Channel,
    ChatStatus,
    Direction,
    MessageCategory,
    MessageSource,
    MessageStatus,
)
from storage import desk
from storage.desk import kept_file_row
from storage.message_feed import bump_feed, count_once
from storage.message_months import within_their_months
from storage.messages import SqlMessagingUnitOfWork
from storage.models import (
    ChatMessage,
    ChatSession,
    Customer,
    CustomerCommunication,
    CustomerTag,
    StaffUser,
)
from storage.partitions import insert_message_once
from storage.sql import dialect_of, insert_for, table_of

CC = table_of(CustomerCommunication)

#: Outbound statuses that mean the message reached the provider, so a customer could be answering it.
SENT_STATUSES = [
    s.value for s in (MessageStatus.QUEUED, MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)
]


class SqlConversations:
    """Nothing here commits; the inbound use-cases do."""

    def __init__(self, session: AsyncSession, *, business_tz: str = "UTC") -> None:
        self.session = session
        self._zone = ZoneInfo(business_tz)
        #: When the messages `latest_outbound` found were created: the statements that then read or mark
        #: the one replied to name its month too, so PostgreSQL reads that month's partition only.
        self._created: dict[int, datetime] = {}

    def _in_its_month(self, communication_id: int) -> ColumnElement[bool]:
        """A condition naming the message's month when this store found it (else none: every month)."""
        created = self._created if dialect_of(self.session) == "postgresql" else None
        return within_their_months(CC.c.created_at, [communication_id], created)

    async def customer_language(self, customer_id: int) -> str | None:
        locale = await self.session.scalar(select(Customer.locale).where(Customer.id == customer_id))
        return str(locale) if locale else None

    async def find_customer(self, channel: Channel, address: str) -> int | None:
        address = address.strip()
        if not address:
            return None
        query = select(Customer.id).order_by(Customer.id).limit(1)
        if channel is Channel.SMS:
            query = query.where(Customer.phone_e164 == address)
        elif channel is Channel.WHATSAPP:
            digits = address.lstrip("+")
            query = query.where((Customer.whatsapp_id == digits) | (Customer.phone_e164 == f"+{digits}"))
            query = query.order_by(None).order_by(Customer.whatsapp_id.is_(None), Customer.id)
        elif channel is Channel.TELEGRAM:
            chat_id = _as_int(address)
            if chat_id is None:
                return None
            query = query.where(Customer.telegram_chat_id == chat_id)
        elif channel is Channel.EMAIL:
            query = query.where(func.lower(Customer.email) == address.lower())
        else:
            return None
        found: int | None = await self.session.scalar(query)
        return found

    async def add_newcomer(self, newcomer: Newcomer, at: datetime) -> int | None:
        if await self._is_staff(newcomer):
            return None
        # One key for a number on SMS and on WhatsApp: first messages on both at once make one customer.
        address = newcomer.phone_e164 or newcomer.email or str(newcomer.telegram_chat_id)
        if dialect_of(self.session) == "postgresql":
            # Two first messages from one address applied at once by two processes make one customer: the
            # second waits here, then finds the first's (SQLite's write transactions are serial already).
            await self.session.execute(
                select(func.pg_advisory_xact_lock(func.hashtextextended(f"newcomer:{address}", 0)))
            )
        existing = await self.find_customer(newcomer.channel, newcomer.whatsapp_id or address)
        if existing is not None:
            return existing
        customer = Customer(
            name=newcomer.name,
            phone_e164=newcomer.phone_e164,
            whatsapp_id=newcomer.whatsapp_id,
            telegram_chat_id=newcomer.telegram_chat_id,
            email=newcomer.email,
            country=newcomer.country,
            timezone=newcomer.timezone,
            locale=newcomer.locale,
            created_at=at,
            updated_at=at,
        )
        self.session.add(customer)
        await self.session.flush()
        self.session.add(CustomerTag(customer_id=customer.id, tag=newcomer.tag))
        await self.session.flush()
        return customer.id

    async def _is_staff(self, newcomer: Newcomer) -> bool:
        """Staff are not customers: a staff member's Telegram (linked, or deactivated) or email address."""
        if newcomer.telegram_chat_id is not None:
            where = StaffUser.telegram_user_id == newcomer.telegram_chat_id
        elif newcomer.email is not None:
            where = func.lower(StaffUser.email) == newcomer.email
        else:
            return False
        return await self.session.scalar(select(StaffUser.id).where(where).limit(1)) is not None

    async def link_telegram_chat(self, customer_id: int, chat_id: str) -> int | None:
        chat = _as_int(chat_id)
        customer = await self.session.get(Customer, customer_id)
        # An erased customer is never linked again: a new chat from them is a new contact.
        if chat is None or customer is None or customer.erased_at is not None:
            return None
        # One chat belongs to one customer (unique column): unlink whoever had it before.
        await self.session.execute(
            update(Customer)
            .where(Customer.telegram_chat_id == chat, Customer.id != customer_id)
            .values(telegram_chat_id=None)
        )
        await self.session.execute(
            update(Customer).where(Customer.id == customer_id).values(telegram_chat_id=chat)
        )
        return customer_id

    async def is_staff_telegram_user(self, user_id: int) -> bool:
        found = await self.session.scalar(
            select(StaffUser.id).where(StaffUser.telegram_user_id == user_id, StaffUser.active.is_(True))
        )
        return found is not None

    async def latest_outbound(self, customer_id: int, channel: Channel, since: datetime) -> int | None:
        """Our latest message to the customer on the channel sent since `since`, which they may be answering.
        It reads every month: a message sent this week may have been planned long before (a reminder)."""
        found = (
            await self.session.execute(
                select(CC.c.id, CC.c.created_at)
                .where(
                    CC.c.customer_id == customer_id,
                    CC.c.channel == channel.value,
                    CC.c.direction == Direction.OUTBOUND.value,
                    CC.c.status.in_(SENT_STATUSES),
                    CC.c.sent_at >= since,
                )
                .order_by(CC.c.sent_at.desc(), CC.c.id.desc())
                .limit(1)
            )
        ).first()
        if found is None:
            return None
        self._created[found.id] = found.created_at
        return int(found.id)

    async def record_inbound(
        self, message: InboundMessage, customer_id: int | None, replied_to: int | None
    ) -> int | None:
        campaign_id = source_ref = None
        if replied_to is not None:
            row = (
                await self.session.execute(
                    select(CC.c.campaign_id, CC.c.source_ref).where(
                        CC.c.id == replied_to, self._in_its_month(replied_to)
                    )
                )
            ).one()
            campaign_id, source_ref = row.campaign_id, row.source_ref
        statement = (
            insert_for(self.session, CC)
            .values(
                customer_id=customer_id,
                channel=message.channel.value,
                provider=str(message.provider),
                direction=Direction.INBOUND.value,
                source=MessageSource.REPLY.value,
                source_ref=source_ref,
                category=MessageCategory.CONVERSATIONAL.value,
                campaign_id=campaign_id,
                to_address=message.to_address[:254],
                from_address=message.from_address[:254],
                body=message.body,
                payload={"sender_name": message.sender_name} if message.sender_name else None,
                status=MessageStatus.RECEIVED.value,
                provider_message_id=message.provider_message_id[:128],
                attempts=0,
                created_at=message.received_at,
            )
            .returning(CC.c.id)
        )
        result = await insert_message_once(self.session, statement, ["provider", "provider_message_id"])
        inserted: int | None = result.scalar_one_or_none()
        return inserted

    async def append_to_chat(
        self,
        customer_id: int,
        channel: Channel,
        communication_id: int,
        body: str,
        at: datetime,
        subject: str | None = None,
    ) -> int:
        chat = await self.session.scalar(
            select(ChatSession)
            .where(
                ChatSession.customer_id == customer_id,
                ChatSession.channel == channel.value,
                ChatSession.status.in_([status.value for status in LIVE_STATUSES]),
            )
            .order_by(ChatSession.started_at.desc(), ChatSession.id.desc())
            .limit(1)
        )
        if chat is None:
            chat = await self.session.scalar(
                select(ChatSession)
                .where(
                    ChatSession.customer_id == customer_id,
                    ChatSession.channel == channel.value,
                    ChatSession.status == ChatStatus.CLOSED.value,
                    ChatSession.closed_at >= at - REOPEN_WITHIN,
                )
                .order_by(ChatSession.closed_at.desc(), ChatSession.id.desc())
                .limit(1)
            )
            if chat is not None:
                chat.closed_at = None
                chat.resolved_by_staff_id = None
                chat.reopened_at = at  # the SLA clocks start again from here
                self.session.add(
                    ChatMessage(
                        session_id=chat.id,
                        author="system",
                        body="Reopened: the customer wrote again.",
                        created_at=at,
                    )
                )
        if chat is None:
            chat = ChatSession(
                customer_id=customer_id, channel=channel.value, status=ChatStatus.OPEN.value, started_at=at
            )
            self.session.add(chat)
        if subject and not chat.subject:
            chat.subject = subject[:200]  # an email's: replies answer under it ("Re: …")
        # The customer writing wakes a snoozed or pending conversation: it needs an agent again.
        chat.status = ChatStatus.OPEN.value
        chat.snoozed_until = None
        if chat.last_message_at is None or chat.last_message_at < at:
            chat.last_message_at = at
        await self.session.flush()
        self.session.add(
            ChatMessage(
                session_id=chat.id,
                author="customer",
                communication_id=communication_id,
                body=body,
                created_at=at,
            )
        )
        await self.session.flush()
        return chat.id

    async def attach_files(
        self, chat_id: int, communication_id: int, files: Sequence[FileOutcome], at: datetime
    ) -> None:
        turn_id = await turn_of(self.session, chat_id, communication_id)
        for file in files:
            if isinstance(file, KeptFile):
                if turn_id is not None:
                    self.session.add(kept_file_row(turn_id, file, at))
            else:
                self.session.add(
                    ChatMessage(session_id=chat_id, author="system", body=file.reason, created_at=at)
                )
        await self.session.flush()

    async def chat_assignee(self, chat_id: int) -> int | None:
        assignee: int | None = await self.session.scalar(
            select(ChatSession.assigned_staff_id).where(ChatSession.id == chat_id)
        )
        return assignee

    async def agent_loads(self) -> list[AgentLoad]:
        # Automatic assignment: locked, so simultaneous customers never push an agent past capacity.
        return await desk.agent_loads(self.session, lock=True)

    async def chat_team(self, chat_id: int) -> str | None:
        return await desk.chat_team(self.session, chat_id)

    async def assign(self, chat_id: int, staff_id: int | None) -> None:
        await desk.assign(self.session, chat_id, staff_id)

    async def note_in_open_chat(
        self, customer_id: int, channel: Channel, communication_id: int, body: str, note: str, at: datetime
    ) -> int | None:
        chat_id = await self.session.scalar(
            select(ChatSession.id)
            .where(
                ChatSession.customer_id == customer_id,
                ChatSession.channel == channel.value,
                ChatSession.status.in_([ChatStatus.OPEN.value, ChatStatus.PENDING.value]),
            )
            .order_by(ChatSession.started_at.desc(), ChatSession.id.desc())
            .limit(1)
        )
        if chat_id is None:
            return None
        self.session.add_all(
            [
                ChatMessage(
                    session_id=chat_id,
                    author="customer",
                    communication_id=communication_id,
                    body=body,
                    created_at=at,
                ),
                ChatMessage(session_id=chat_id, author="system", body=note, created_at=at),
            ]
        )
        await self.session.flush()
        return int(chat_id)

    async def mark_replied(self, communication_id: int, at: datetime) -> bool:
        result = await self.session.execute(
            update(CC)
            .where(
                CC.c.id == communication_id,
                self._in_its_month(communication_id),
                CC.c.replied_at.is_(None),
            )
            .values(replied_at=at)
        )
        if not getattr(result, "rowcount", 0):
            return False
        await count_once(self.session, self._zone, "replied", [communication_id], self._created)
        return True

    async def count_in_feed(self, communication_id: int, figure: str, at: datetime) -> None:
        """Adds one to a daily figure under the message's channel, provider, campaign and template."""
        row = (
            await self.session.execute(
                select(CC.c.channel, CC.c.provider, CC.c.campaign_id, CC.c.template_id).where(
                    CC.c.id == communication_id, self._in_its_month(communication_id)
                )
            )
        ).one()
        key = (row.channel, row.provider, row.campaign_id or 0, row.template_id or 0, figure)
        await bump_feed(self.session, at.astimezone(self._zone).date(), Counter({key: 1}))

    async def enqueue(self, entry: OutboxEntry, at: datetime) -> int | None:
        """Puts a reply in the outbox for the delivery worker; None when its idempotency key exists."""
        statement = (
            insert_for(self.session, CC)
            .values(
                customer_id=entry.customer_id,
                channel=entry.channel.value,
                provider=PROVIDER_FOR_CHANNEL[entry.channel].value,
                direction=Direction.OUTBOUND.value,
                source=entry.source.value,
                source_ref=entry.source_ref,
                category=entry.category.value,
                idempotency_key=entry.idempotency_key[:128],
                template_id=entry.template_id,
                campaign_id=entry.campaign_id,
                to_address=entry.to_address[:254],
                subject=entry.subject,
                body=entry.body,
                payload=dict(entry.payload) or None,
                status=entry.status.value,
                status_reason=entry.status_reason,
                next_attempt_at=entry.send_at or at,
                segments=entry.segments,
                encoding=entry.encoding,
                cost_micros=entry.cost_micros,
                currency=entry.currency,
                attempts=0,
                created_at=at,
            )
            .returning(CC.c.id)
        )
        result = await insert_message_once(self.session, statement, ["idempotency_key"])
        inserted: int | None = result.scalar_one_or_none()
        return inserted


class SqlChatReplies:
    """A conversation as a staff reply needs it; nothing here commits (the reply use-case does)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def reply_target(self, chat_id: int) -> ChatReplyTarget | None:
        chat = await self.session.get(ChatSession, chat_id)
        if chat is None:
            return None
        found = (
            await self.session.execute(
                select(Customer.name, Customer.erased_at).where(Customer.id == chat.customer_id)
            )
        ).first()
        name, erased_at = found if found is not None else (None, None)
        latest_email = await self.session.scalar(
            select(CustomerCommunication.provider_message_id)
            .join(ChatMessage, ChatMessage.communication_id == CustomerCommunication.id)
            .where(
                ChatMessage.session_id == chat.id,
                ChatMessage.author == "customer",
                CustomerCommunication.channel == Channel.EMAIL.value,
                CustomerCommunication.direction == Direction.INBOUND.value,
            )
            .order_by(ChatMessage.created_at.desc(), ChatMessage.id.desc())
            .limit(1)
        )
        return ChatReplyTarget(
            chat.id,
            chat.customer_id,
            chat.channel,
            chat.subject,
            name,
            customer_erased=erased_at is not None,
            answers_email=latest_email,
        )

    async def add_staff_turn(
        self,
        chat_id: int,
        staff_id: int,
        communication_id: int,
        body: str,
        at: datetime,
        *,
        external_ref: str | None = None,
        mirrored: bool = False,
    ) -> bool:
        chat = await self.session.get(ChatSession, chat_id)
        if chat is None:
            return False
        self.session.add(
            ChatMessage(
                session_id=chat_id,
                author="staff",
                staff_id=staff_id,
                communication_id=communication_id,
                body=body,
                created_at=at,
                external_ref=external_ref,
                mirrored_at=at if mirrored else None,
            )
        )
        chat.first_response_at = chat.first_response_at or at
        chat.last_message_at = at
        return True

    async def keep_staff_file(
        self, chat_id: int, communication_id: int, file: KeptFile, at: datetime
    ) -> None:
        await self.session.flush()
        turn_id = await turn_of(self.session, chat_id, communication_id)
        if turn_id is not None:
            self.session.add(kept_file_row(turn_id, file, at))


async def turn_of(session: AsyncSession, chat_id: int, communication_id: int) -> int | None:
    """The conversation's turn for a stored message (the customer's, or a staff reply)."""
    found: int | None = await session.scalar(
        select(ChatMessage.id)
        .where(ChatMessage.session_id == chat_id, ChatMessage.communication_id == communication_id)
        .order_by(ChatMessage.id.desc())
        .limit(1)
    )
    return found


class SqlChatReplyUnitOfWork(SqlMessagingUnitOfWork):
    """Satisfies domain.conversations.ports.ChatReplyUnitOfWork: sending plus the conversation, one transaction."""

    chats: SqlChatReplies

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.chats = SqlChatReplies(self.session)
        return self


def _as_int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None
