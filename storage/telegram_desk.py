"""Live chat's Telegram forwarding in SQL: which turns went to agents' Telegram chats, and what each message was."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.conversations.slack_threads import (
    NEWS_WINDOW,
    ThreadCard,
    ThreadTurn,
)
from domain.conversations.telegram_desk import CATCH_UP, TelegramAgent, TelegramEcho
from domain.vocabulary import Availability
from storage.desk import DESK_ROLES
from storage.models import ChatMessage, ChatSession, ChatTelegramPost, CustomerCommunication, StaffUser
from storage.queries.chat_attachments import turn_files
from storage.slack_threads import (
    SqlSlackThreads,
    claim_echo,
    claim_turn_ids,
    echo_due,
    pending_echo_ids,
    pending_turn_ids,
    release_echo,
    thread_turn,
)
from storage.unit_of_work import SqlUnitOfWork


class SqlTelegramPosts:
    """domain.conversations.telegram_desk.TelegramPosts."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def pending_turn_ids(self, limit: int) -> list[int]:
        return await pending_turn_ids(self._session, ChatMessage.telegram_posted_at, limit)

    async def claim_turns(self, turn_ids: list[int], now: datetime) -> list[ThreadTurn]:
        ids = await claim_turn_ids(self._session, ChatMessage.telegram_posted_at, turn_ids, now)
        if not ids:
            return []
        forwarded_before = (
            select(ChatTelegramPost.id).where(ChatTelegramPost.session_id == ChatMessage.session_id).exists()
        )
        rows = await self._session.execute(
            select(ChatMessage, StaffUser.name)
            .outerjoin(StaffUser, StaffUser.id == ChatMessage.staff_id)
            .where(
                ChatMessage.id.in_(ids),
                # History is not forwarded when a conversation first comes to Telegram; after that, all is.
                or_(ChatMessage.created_at >= now - NEWS_WINDOW, forwarded_before),
            )
            .order_by(ChatMessage.id)
        )
        found = list(rows)
        files = await turn_files(self._session, [turn.id for turn, _ in found])
        return [thread_turn(turn, name, files.get(turn.id, ())) for turn, name in found]

    async def card(self, chat_id: int) -> ThreadCard | None:
        return await SqlSlackThreads(self._session).card(chat_id)

    async def recipients(self, chat_id: int, *, earlier_too: bool = False) -> list[TelegramAgent]:
        holder = await self._session.scalar(
            select(ChatSession.assigned_staff_id).where(ChatSession.id == chat_id)
        )
        linked = [
            StaffUser.telegram_user_id.is_not(None),
            StaffUser.active.is_(True),
            StaffUser.role.in_(DESK_ROLES),
        ]
        if holder is not None:
            chosen = StaffUser.id == holder
        else:
            chosen = StaffUser.availability == Availability.ONLINE.value
        if earlier_too:
            told = select(ChatTelegramPost.telegram_chat_id).where(ChatTelegramPost.session_id == chat_id)
            chosen = or_(chosen, StaffUser.telegram_user_id.in_(told))
        rows = await self._session.execute(
            select(StaffUser.id, StaffUser.telegram_user_id).where(*linked, chosen).order_by(StaffUser.id)
        )
        return [TelegramAgent(staff_id, user_id) for staff_id, user_id in rows if user_id is not None]

    async def remember(self, chat_id: int, telegram_chat_id: int, message_id: int, at: datetime) -> None:
        self._session.add(
            ChatTelegramPost(
                session_id=chat_id, telegram_chat_id=telegram_chat_id, message_id=message_id, created_at=at
            )
        )
        await self._session.flush()

    async def catch_up(self, chat_id: int, telegram_chat_id: int, before_turn: int) -> list[ThreadTurn]:
        told = await self._session.scalar(
            select(ChatTelegramPost.id)
            .where(
                ChatTelegramPost.session_id == chat_id, ChatTelegramPost.telegram_chat_id == telegram_chat_id
            )
            .limit(1)
        )
        if told is not None:
            return []
        rows = await self._session.execute(
            select(ChatMessage, StaffUser.name)
            .outerjoin(StaffUser, StaffUser.id == ChatMessage.staff_id)
            .where(
                ChatMessage.session_id == chat_id,
                ChatMessage.id < before_turn,
                ChatMessage.author.in_(("customer", "staff")),
                ChatMessage.is_note.is_(False),
            )
            .order_by(ChatMessage.id.desc())
            .limit(CATCH_UP)
        )
        found = list(rows)[::-1]
        files = await turn_files(self._session, [turn.id for turn, _ in found])
        return [thread_turn(turn, name, files.get(turn.id, ())) for turn, name in found]

    async def chat_for_message(self, telegram_chat_id: int, message_id: int) -> int | None:
        return await self._session.scalar(
            select(ChatTelegramPost.session_id).where(
                ChatTelegramPost.telegram_chat_id == telegram_chat_id,
                ChatTelegramPost.message_id == message_id,
            )
        )

    async def pending_echo_ids(self, since: datetime, limit: int) -> list[int]:
        written_here = ChatMessage.external_ref.like(f"{TELEGRAM_REF}%")
        return await pending_echo_ids(self._session, TOLD, since, limit, written_here)

    async def claim_echoes(self, turn_ids: list[int]) -> list[TelegramEcho]:
        rows = await self._session.execute(
            select(ChatMessage, CustomerCommunication, StaffUser.active, StaffUser.telegram_user_id)
            .join(CustomerCommunication, CustomerCommunication.id == ChatMessage.communication_id)
            .outerjoin(StaffUser, StaffUser.id == ChatMessage.staff_id)
            .where(ChatMessage.id.in_(turn_ids), *echo_due(TOLD))
            .order_by(ChatMessage.id)
        )
        echoes: list[TelegramEcho] = []
        for turn, message, active, telegram_user_id in rows:
            echo = await claim_echo(self._session, TOLD, turn, message)
            where = telegram_message_of(turn.external_ref or "")
            if echo is None or where is None:
                continue
            if not active or where[0] != telegram_user_id:
                continue  # the agent left, or unlinked that Telegram account: told nothing there
            echoes.append(TelegramEcho(echo, *where))
        return echoes

    async def release_echo(self, echo: TelegramEcho) -> None:
        await release_echo(self._session, TOLD, echo.echo)


#: Where the outcome last told in Telegram is kept.
TOLD = ChatMessage.telegram_echoed_status
#: How a staff turn written in Telegram is referred to (switchboard/chat_threads.py): "telegram:CHAT:MESSAGE".
TELEGRAM_REF = "telegram:"


def telegram_message_of(external_ref: str) -> tuple[int, int] | None:
    """(chat id, message id) of "telegram:CHAT:MESSAGE"; None for anything else."""
    kind, _, rest = external_ref.partition(":")
    chat, _, message = rest.partition(":")
    try:
        return (int(chat), int(message)) if kind == TELEGRAM_REF.rstrip(":") else None
    except ValueError:
        return None


class SqlTelegramDeskUnitOfWork(SqlUnitOfWork):
    """domain.conversations.telegram_desk.TelegramDeskUnitOfWork."""

    telegram: SqlTelegramPosts

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.telegram = SqlTelegramPosts(self.session)
        return self
