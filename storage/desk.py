"""The agent desk in SQL: conversations as the desk sees them, agents' loads, and the desk's unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.conversations.attachments import KeptFile
from domain.conversations.csat import CsatPolicy
from domain.conversations.desk import AgentLoad, DeskChat
from domain.vocabulary import ROLE_RANK, Availability, ChatStatus, Role
from storage.csat import SqlSurveyDesk
from storage.database import Database
from storage.messages import SqlMessagingUnitOfWork
from storage.models import ChatAttachment, ChatMessage, ChatSession, Customer, Location, StaffUser

#: The statuses that count toward an agent's capacity (snoozed and resolved ones do not).
WORKING_STATUSES = (ChatStatus.OPEN.value, ChatStatus.PENDING.value)
#: Who can take conversations.
DESK_ROLES = tuple(role.value for role in Role if ROLE_RANK[role] >= ROLE_RANK[Role.AGENT])


async def agent_loads(session: AsyncSession, *, lock: bool = False) -> list[AgentLoad]:
    """Every active staff member who can take conversations, with their open count.

    `lock`: first lock the agents' rows until the transaction ends, so two conversations assigned at the
    same moment (two web processes on PostgreSQL) count each other and never push an agent past capacity.
    """
    if lock:
        await session.execute(
            select(StaffUser.id)
            .where(StaffUser.active.is_(True), StaffUser.role.in_(DESK_ROLES))
            .order_by(StaffUser.id)
            .with_for_update()
        )
    working = (
        select(ChatSession.assigned_staff_id, func.count().label("open_chats"))
        .where(ChatSession.status.in_(WORKING_STATUSES), ChatSession.assigned_staff_id.is_not(None))
        .group_by(ChatSession.assigned_staff_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            StaffUser.id,
            StaffUser.name,
            StaffUser.email,
            StaffUser.availability,
            StaffUser.chat_capacity,
            func.coalesce(working.c.open_chats, 0),
            Location.code,
            Location.name,
        )
        .outerjoin(working, working.c.assigned_staff_id == StaffUser.id)
        .outerjoin(Location, Location.id == StaffUser.location_id)
        .where(StaffUser.active.is_(True), StaffUser.role.in_(DESK_ROLES))
        .order_by(StaffUser.id)
    )
    return [
        AgentLoad(staff_id, name, email, Availability(availability), int(open_chats), capacity, code, place)
        for staff_id, name, email, availability, capacity, open_chats, code, place in rows
    ]


async def chat_team(session: AsyncSession, chat_id: int) -> str | None:
    """The team a conversation belongs to: the code of the customer's home clinic, if they have one."""
    code: str | None = await session.scalar(
        select(Location.code)
        .join(Customer, Customer.home_location_id == Location.id)
        .join(ChatSession, ChatSession.customer_id == Customer.id)
        .where(ChatSession.id == chat_id)
    )
    return code


async def assign(session: AsyncSession, chat_id: int, staff_id: int | None) -> None:
    await session.execute(
        update(ChatSession).where(ChatSession.id == chat_id).values(assigned_staff_id=staff_id)
    )


class SqlChatDesk:
    """domain.conversations.ports.ChatDesk."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def chat(self, chat_id: int, *, for_update: bool = False) -> DeskChat | None:
        query = (
            select(ChatSession, Customer.name, StaffUser.name, Customer.erased_at)
            .join(Customer, Customer.id == ChatSession.customer_id)
            .outerjoin(StaffUser, StaffUser.id == ChatSession.assigned_staff_id)
            .where(ChatSession.id == chat_id)
        )
        if for_update:
            query = query.with_for_update(of=ChatSession)
        row = (await self._session.execute(query.execution_options(populate_existing=True))).first()
        if row is None:
            return None
        chat, customer_name, assigned_name, erased_at = row
        return DeskChat(
            chat.id,
            chat.customer_id,
            customer_name,
            chat.channel,
            ChatStatus(chat.status),
            chat.assigned_staff_id,
            assigned_name,
            chat.snoozed_until,
            chat.last_message_at,
            customer_erased=erased_at is not None,
        )

    async def agent_loads(self) -> list[AgentLoad]:
        return await agent_loads(self._session)

    async def assign(self, chat_id: int, staff_id: int | None) -> None:
        await assign(self._session, chat_id, staff_id)

    async def set_status(
        self,
        chat_id: int,
        status: ChatStatus,
        at: datetime,
        *,
        snoozed_until: datetime | None = None,
        resolved_by: int | None = None,
    ) -> None:
        resolved = status is ChatStatus.CLOSED
        await self._session.execute(
            update(ChatSession)
            .where(ChatSession.id == chat_id)
            .values(
                status=status.value,
                snoozed_until=snoozed_until,
                closed_at=at if resolved else None,
                resolved_by_staff_id=resolved_by if resolved else None,
                # Reopening a resolved conversation starts its SLA clocks again from now.
                reopened_at=ChatSession.reopened_at
                if resolved
                else case((ChatSession.status == ChatStatus.CLOSED.value, at), else_=ChatSession.reopened_at),
            )
        )

    async def add_system_turn(self, chat_id: int, body: str, at: datetime) -> None:
        self._session.add(ChatMessage(session_id=chat_id, author="system", body=body, created_at=at))
        await self._session.flush()

    async def add_note(
        self,
        chat_id: int,
        staff_id: int,
        body: str,
        at: datetime,
        *,
        external_ref: str | None = None,
        mirrored: bool = False,
        file: KeptFile | None = None,
    ) -> bool:
        if external_ref is not None and await self._session.scalar(
            select(ChatMessage.id).where(ChatMessage.external_ref == external_ref)
        ):
            return False
        turn = ChatMessage(
            session_id=chat_id,
            author="staff",
            staff_id=staff_id,
            body=body,
            created_at=at,
            is_note=True,
            external_ref=external_ref,
            mirrored_at=at if mirrored else None,
        )
        self._session.add(turn)
        await self._session.flush()
        if file is not None:
            self._session.add(kept_file_row(turn.id, file, at))
            await self._session.flush()
        return True

    async def set_availability(self, staff_id: int, availability: Availability) -> None:
        await self._session.execute(
            update(StaffUser).where(and_(StaffUser.id == staff_id)).values(availability=availability.value)
        )

    async def snoozes_over(self, now: datetime, limit: int) -> list[int]:
        query = (
            select(ChatSession.id)
            .where(ChatSession.status == ChatStatus.SNOOZED.value, ChatSession.snoozed_until <= now)
            .order_by(ChatSession.snoozed_until, ChatSession.id)
            .limit(limit)
        )
        return list(await self._session.scalars(query))


class SqlDeskUnitOfWork(SqlMessagingUnitOfWork):
    """Satisfies domain.conversations.ports.DeskUnitOfWork (and SendingUnitOfWork, for the CSAT survey)."""

    desk: SqlChatDesk
    #: CSAT: None when this unit of work sends no surveys (no policy given, or SWITCHBOARD_CSAT_SURVEYS=off).
    surveys: SqlSurveyDesk | None

    def __init__(
        self,
        database: Database,
        *,
        read_only: bool = False,
        business_tz: str = "UTC",
        csat: CsatPolicy | None = None,
    ) -> None:
        super().__init__(database, read_only=read_only, business_tz=business_tz)
        self._csat = csat

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.desk = SqlChatDesk(self.session)
        csat = self._csat
        self.surveys = SqlSurveyDesk(self.session, csat, self) if csat is not None and csat.enabled else None
        return self


def kept_file_row(turn_id: int, file: KeptFile, at: datetime) -> ChatAttachment:
    """A checked file kept on a conversation turn (a customer's, a staff reply's or a note's)."""
    return ChatAttachment(
        message_id=turn_id,
        filename=file.filename,
        content_type=file.content_type,
        size_bytes=file.size_bytes,
        sha256=file.sha256,
        content=file.content,
        created_at=at,
    )
