"""Conversations' Slack threads in SQL: the thread map, which turns are posted, and which outcomes echoed."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Self

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from domain.conversations.attachments import TurnFile
from domain.conversations.slack_threads import (
    ABANDONED_CLAIM,
    ECHOED_STATUSES,
    NEWS_WINDOW,
    DeliveryEcho,
    SlackThread,
    ThreadCard,
    ThreadedTurn,
    ThreadTurn,
    written_in,
)
from domain.vocabulary import ChatStatus, MessageStatus
from storage.models import (
    ChatMessage,
    ChatSession,
    ChatSlackThread,
    Customer,
    CustomerCommunication,
    Location,
    StaffUser,
)
from storage.queries.chat_attachments import turn_files
from storage.sql import insert_for, table_of
from storage.unit_of_work import SqlUnitOfWork

log = logging.getLogger(__name__)


async def pending_turn_ids(
    session: AsyncSession, posted_at: InstrumentedAttribute[Any], limit: int
) -> list[int]:
    """Turns not yet posted to a staff chat (`posted_at`: Slack's or Telegram's column), oldest first."""
    rows = await session.scalars(
        select(ChatMessage.id).where(posted_at.is_(None)).order_by(ChatMessage.id).limit(limit)
    )
    return list(rows)


async def claim_turn_ids(
    session: AsyncSession, posted_at: InstrumentedAttribute[Any], turn_ids: list[int], now: datetime
) -> list[int]:
    """Mark these turns posted; the ids nobody else took first (the claim that makes posting at most once)."""
    claimed = await session.scalars(
        update(ChatMessage)
        .where(ChatMessage.id.in_(turn_ids), posted_at.is_(None))
        .values({posted_at: now})
        .returning(ChatMessage.id)
    )
    return list(claimed)


# --- delivery echoes: what happened to a staff reply, told once per outcome in a staff chat --------------
# `told` is the chat's column (Slack's `echoed_status`, Telegram's `telegram_echoed_status`).


def echo_due(told: InstrumentedAttribute[Any]) -> list[ColumnElement[bool]]:
    """A person's reply (not a note) whose message has an outcome to tell that `told` does not hold yet."""
    return [
        ChatMessage.author == "staff",
        ChatMessage.is_note.is_(False),
        CustomerCommunication.status.in_([status.value for status in ECHOED_STATUSES]),
        told.is_distinct_from(CustomerCommunication.status),
    ]


async def pending_echo_ids(
    session: AsyncSession, told: InstrumentedAttribute[Any], since: datetime, limit: int, *where: Any
) -> list[int]:
    """Replies written since `since` with an outcome to tell, oldest first."""
    rows = await session.scalars(
        select(ChatMessage.id)
        .join(CustomerCommunication, CustomerCommunication.id == ChatMessage.communication_id)
        .where(ChatMessage.created_at >= since, *echo_due(told), *where)
        .order_by(ChatMessage.id)
        .limit(limit)
    )
    return list(rows)


async def claim_echo(
    session: AsyncSession, told: InstrumentedAttribute[Any], turn: ChatMessage, message: CustomerCommunication
) -> DeliveryEcho | None:
    """Note the message's outcome as told for `turn`, unless someone told it meanwhile (then None)."""
    before = getattr(turn, told.key)  # read first: the update below refreshes `turn` in the session
    claimed = await session.execute(
        update(ChatMessage)
        .where(ChatMessage.id == turn.id, told.is_not_distinct_from(before))
        .values({told: message.status})
        .returning(ChatMessage.id)
    )
    if claimed.first() is None:
        return None
    return DeliveryEcho(
        turn.id,
        turn.session_id,
        MessageStatus(message.status),
        message.status_reason,
        message.channel,
        message.customer_id,
        message.error_code,
        before,
    )


async def release_echo(session: AsyncSession, told: InstrumentedAttribute[Any], echo: DeliveryEcho) -> None:
    """The outcome could not be told: due again, unless another outcome was claimed meanwhile."""
    await session.execute(
        update(ChatMessage)
        .where(ChatMessage.id == echo.turn_id, told == echo.status.value)
        .values({told: echo.echoed_before})
    )


def thread_turn(turn: ChatMessage, staff_name: str | None, files: tuple[TurnFile, ...] = ()) -> ThreadTurn:
    return ThreadTurn(
        turn_id=turn.id,
        chat_id=turn.session_id,
        author=turn.author,
        staff_name=staff_name,
        body=turn.body,
        is_note=turn.is_note,
        created_at=turn.created_at,
        written_in=written_in(turn.external_ref),
        staff_id=turn.staff_id,
        files=files,
    )


class SqlSlackThreads:
    """domain.conversations.slack_threads.SlackThreadStore."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def pending_turn_ids(self, limit: int) -> list[int]:
        return await pending_turn_ids(self._session, ChatMessage.mirrored_at, limit)

    async def claim_turns(self, turn_ids: list[int], now: datetime) -> list[ThreadTurn]:
        ids = await claim_turn_ids(self._session, ChatMessage.mirrored_at, turn_ids, now)
        if not ids:
            return []
        found = await self._session.execute(
            select(ChatMessage, StaffUser.name, ChatSlackThread.thread_ts)
            .outerjoin(StaffUser, StaffUser.id == ChatMessage.staff_id)
            .outerjoin(ChatSlackThread, ChatSlackThread.session_id == ChatMessage.session_id)
            .where(ChatMessage.id.in_(ids))
            .order_by(ChatMessage.id)
        )
        turns, old = [], 0
        rows = list(found)
        files = await turn_files(self._session, [row[0].id for row in rows])
        for turn, staff_name, thread_ts in rows:
            # History is not posted when a conversation first comes to Slack; once it has a thread, every
            # turn is (a backlog after Slack was away still reaches the thread).
            if thread_ts is None and turn.created_at < now - NEWS_WINDOW:
                old += 1
                continue
            turns.append(thread_turn(turn, staff_name, files.get(turn.id, ())))
        if old:
            log.info("%s turns from before their conversation came to Slack are not posted", old)
        return turns

    async def release_turns(self, turn_ids: list[int]) -> None:
        await self._session.execute(
            update(ChatMessage).where(ChatMessage.id.in_(turn_ids)).values(mirrored_at=None)
        )

    async def thread(self, chat_id: int) -> SlackThread | None:
        row = await self._session.get(ChatSlackThread, chat_id, populate_existing=True)
        if row is None:
            return None
        return SlackThread(row.session_id, row.channel_id, row.thread_ts, row.root_state, row.claimed_at)

    async def card(self, chat_id: int) -> ThreadCard | None:
        row = (
            await self._session.execute(
                select(ChatSession, Customer, StaffUser.name, Location.code)
                .join(Customer, Customer.id == ChatSession.customer_id)
                .outerjoin(StaffUser, StaffUser.id == ChatSession.assigned_staff_id)
                .outerjoin(Location, Location.id == Customer.home_location_id)
                .where(ChatSession.id == chat_id)
            )
        ).first()
        if row is None:
            return None
        chat, customer, assignee, team = row
        return ThreadCard(
            chat_id=chat.id,
            channel=chat.channel,
            status=ChatStatus(chat.status),
            customer_id=customer.id,
            customer_name=customer.name,
            customer_phone=customer.phone_e164,
            customer_email=customer.email,
            assignee=assignee,
            subject=chat.subject,
            team=team,
        )

    async def claim_thread(self, chat_id: int, channel_id: str, now: datetime) -> bool:
        # A claim whose poster died (never posted, long ago) is taken over.
        await self._session.execute(
            delete(ChatSlackThread).where(
                ChatSlackThread.session_id == chat_id,
                ChatSlackThread.thread_ts.is_(None),
                ChatSlackThread.claimed_at < now - ABANDONED_CLAIM,
            )
        )
        inserted = await self._session.execute(
            insert_for(self._session, table_of(ChatSlackThread))
            .values(session_id=chat_id, channel_id=channel_id, claimed_at=now)
            .on_conflict_do_nothing()
            .returning(table_of(ChatSlackThread).c.session_id)
        )
        return inserted.first() is not None

    async def thread_posted(
        self, chat_id: int, channel_id: str, thread_ts: str, state: str, now: datetime
    ) -> None:
        await self._session.execute(
            update(ChatSlackThread)
            .where(ChatSlackThread.session_id == chat_id)
            .values(channel_id=channel_id, thread_ts=thread_ts, root_state=state, posted_at=now)
        )

    async def drop_thread_claim(self, chat_id: int) -> None:
        await self._session.execute(
            delete(ChatSlackThread).where(
                ChatSlackThread.session_id == chat_id, ChatSlackThread.thread_ts.is_(None)
            )
        )

    async def set_root_state(self, chat_id: int, state: str) -> None:
        await self._session.execute(
            update(ChatSlackThread).where(ChatSlackThread.session_id == chat_id).values(root_state=state)
        )

    async def pending_echo_ids(self, since: datetime, limit: int) -> list[int]:
        in_a_thread = select(ChatSlackThread.session_id).where(
            ChatSlackThread.session_id == ChatMessage.session_id
        )
        return await pending_echo_ids(
            self._session, ChatMessage.echoed_status, since, limit, in_a_thread.exists()
        )

    async def claim_echoes(self, turn_ids: list[int]) -> list[DeliveryEcho]:
        rows = await self._session.execute(
            select(ChatMessage, CustomerCommunication)
            .join(CustomerCommunication, CustomerCommunication.id == ChatMessage.communication_id)
            .where(ChatMessage.id.in_(turn_ids), *echo_due(ChatMessage.echoed_status))
            .order_by(ChatMessage.id)
        )
        claimed = [
            await claim_echo(self._session, ChatMessage.echoed_status, turn, message)
            for turn, message in rows
        ]
        return [echo for echo in claimed if echo is not None]

    async def release_echo(self, echo: DeliveryEcho) -> None:
        await release_echo(self._session, ChatMessage.echoed_status, echo)

    async def chat_for_thread(self, channel_id: str, thread_ts: str) -> int | None:
        return await self._session.scalar(
            select(ChatSlackThread.session_id).where(
                ChatSlackThread.channel_id == channel_id, ChatSlackThread.thread_ts == thread_ts
            )
        )

    async def turn_by_ref(self, external_ref: str) -> ThreadedTurn | None:
        row = (
            await self._session.execute(
                select(ChatMessage.id, ChatMessage.session_id, ChatMessage.is_note).where(
                    ChatMessage.external_ref == external_ref
                )
            )
        ).first()
        return None if row is None else ThreadedTurn(row[0], row[1], bool(row[2]))

    async def replace_note(self, turn_id: int, body: str) -> None:
        await self._session.execute(
            update(ChatMessage)
            .where(ChatMessage.id == turn_id, ChatMessage.is_note.is_(True))
            .values(body=body)
        )

    async def add_system_turn(self, chat_id: int, body: str, at: datetime, *, mirrored: bool) -> None:
        self._session.add(
            ChatMessage(
                session_id=chat_id,
                author="system",
                body=body,
                created_at=at,
                mirrored_at=at if mirrored else None,
            )
        )
        await self._session.flush()


class SqlSlackThreadUnitOfWork(SqlUnitOfWork):
    """domain.conversations.slack_threads.SlackThreadUnitOfWork."""

    threads: SqlSlackThreads

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.threads = SqlSlackThreads(self.session)
        return self
