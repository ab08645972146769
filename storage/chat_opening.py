"""`chat open` in SQL: how a customer can be reached, their live conversation, and opening a new one."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.conversations.desk import LIVE_STATUSES, DeskChat
from domain.conversations.opening import OPENABLE, Reachability
from domain.vocabulary import Channel, ChatStatus, Direction
from storage.desk import SqlChatDesk
from storage.models import ChatMessage, ChatSession, Customer, CustomerCommunication, StaffUser
from storage.recipients import SqlRecipientDirectory
from storage.sql import dialect_of
from storage.unit_of_work import SqlUnitOfWork

#: How many of the customer's latest conversations and messages say which channels they use.
RECENT_LOOKBACK = 20


class SqlChatOpening:
    """domain.conversations.opening.ChatOpening; nothing here commits."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._desk = SqlChatDesk(session)

    async def reachability(self, customer_id: int, now: datetime) -> Reachability | None:
        if not 0 < customer_id <= 2**63 - 1:
            return None
        lock = select(Customer.id).where(Customer.id == customer_id)
        if dialect_of(self._session) == "postgresql":
            lock = lock.with_for_update()  # two opens for one customer at once make one conversation
        if await self._session.scalar(lock) is None:
            return None
        found = await SqlRecipientDirectory(self._session).by_ids([customer_id], channels=OPENABLE, now=now)
        if not found:
            return None
        recipient = found[0]
        return Reachability(
            customer_id,
            recipient.name,
            dict(recipient.addresses),
            dict(recipient.consents),
            recipient.preferred_channel,
            await self._recent_channels(customer_id),
            recipient.last_inbound_whatsapp_at,
        )

    async def _recent_channels(self, customer_id: int) -> list[Channel]:
        chats = await self._session.execute(
            select(ChatSession.channel, func.coalesce(ChatSession.last_message_at, ChatSession.started_at))
            .where(ChatSession.customer_id == customer_id)
            .order_by(ChatSession.started_at.desc())
            .limit(RECENT_LOOKBACK)
        )
        inbound = await self._session.execute(
            select(CustomerCommunication.channel, CustomerCommunication.created_at)
            .where(
                CustomerCommunication.customer_id == customer_id,
                CustomerCommunication.direction == Direction.INBOUND.value,
            )
            .order_by(CustomerCommunication.created_at.desc())
            .limit(RECENT_LOOKBACK)
        )
        seen = sorted([*chats.all(), *inbound.all()], key=lambda row: row[1], reverse=True)
        known = {c.value for c in Channel}
        return list(dict.fromkeys(Channel(channel) for channel, _ in seen if channel in known))

    async def live_chat(self, customer_id: int, channel: Channel) -> DeskChat | None:
        chat_id = await self._session.scalar(
            select(ChatSession.id)
            .where(
                ChatSession.customer_id == customer_id,
                ChatSession.channel == channel.value,
                ChatSession.status.in_([status.value for status in LIVE_STATUSES]),
            )
            .order_by(ChatSession.started_at.desc(), ChatSession.id.desc())
            .limit(1)
        )
        return None if chat_id is None else await self._desk.chat(chat_id, for_update=True)

    async def open_chat(self, customer_id: int, channel: Channel, staff_id: int, at: datetime) -> int:
        chat = ChatSession(
            customer_id=customer_id,
            channel=channel.value,
            status=ChatStatus.OPEN.value,
            assigned_staff_id=staff_id,
            started_at=at,
            last_message_at=at,
        )
        self._session.add(chat)
        await self._session.flush()
        return chat.id

    async def assign(self, chat_id: int, staff_id: int) -> None:
        await self._desk.assign(chat_id, staff_id)

    async def wake(self, chat_id: int, at: datetime) -> None:
        await self._session.execute(
            update(ChatSession)
            .where(ChatSession.id == chat_id)
            .values(status=ChatStatus.OPEN.value, snoozed_until=None)
        )

    async def add_system_turn(self, chat_id: int, body: str, at: datetime) -> None:
        self._session.add(ChatMessage(session_id=chat_id, author="system", body=body, created_at=at))
        await self._session.flush()

    async def staff_name(self, staff_id: int) -> str:
        name = await self._session.scalar(select(StaffUser.name).where(StaffUser.id == staff_id))
        return str(name) if name else "staff"


class SqlChatOpeningUnitOfWork(SqlUnitOfWork):
    """Satisfies domain.conversations.opening.ChatOpeningUnitOfWork."""

    opening: SqlChatOpening

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.opening = SqlChatOpening(self.session)
        return self
