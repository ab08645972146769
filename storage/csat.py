"""CSAT in SQL: a conversation's survey (chat_sessions.csat_*), its answer, and the turns they add.

Nothing here commits: the resolving, inbound and email-link use-cases do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Self

from sqlalchemy import false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.conversations.csat import CsatPolicy, Survey, SurveyTarget
from domain.conversations.desk import LIVE_STATUSES
from domain.messages.sending import SendingUnitOfWork
from domain.vocabulary import Channel, ChatStatus
from storage.models import ChatMessage, ChatSession, Customer
from storage.unit_of_work import SqlUnitOfWork


def _survey(
    chat: ChatSession, *, staff_wrote_since: bool = False, locale: str | None = None
) -> Survey | None:
    if chat.csat_requested_at is None:
        return None
    return Survey(
        chat.id,
        chat.customer_id,
        chat.csat_requested_at,
        chat.csat_score,
        chat.csat_answered_at,
        chat.csat_comment,
        staff_wrote_since,
        locale,
    )


class SqlSurveyAnswers:
    """domain.conversations.csat.SurveyAnswers."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_survey(self, customer_id: int, channel: Channel, since: datetime) -> Survey | None:
        # A live conversation on the channel (one staff opened since, say) takes the message instead.
        live = await self.session.scalar(
            select(ChatSession.id)
            .where(
                ChatSession.customer_id == customer_id,
                ChatSession.channel == channel.value,
                ChatSession.status.in_([status.value for status in LIVE_STATUSES]),
            )
            .limit(1)
        )
        if live is not None:
            return None
        chat = await self.session.scalar(
            select(ChatSession)
            .where(
                ChatSession.customer_id == customer_id,
                ChatSession.channel == channel.value,
                ChatSession.status == ChatStatus.CLOSED.value,
                ChatSession.csat_requested_at >= since,
            )
            .order_by(ChatSession.csat_requested_at.desc(), ChatSession.id.desc())
            .limit(1)
        )
        if chat is None or chat.csat_requested_at is None:
            return None
        # Staff writing to the customer after the survey (a note does not reach them) asked something else.
        staff_since = await self.session.scalar(
            select(ChatMessage.id)
            .where(
                ChatMessage.session_id == chat.id,
                ChatMessage.author == "staff",
                ChatMessage.is_note.is_(false()),
                ChatMessage.created_at > chat.csat_requested_at,
            )
            .limit(1)
        )
        return _survey(chat, staff_wrote_since=staff_since is not None)

    async def survey(self, chat_id: int) -> Survey | None:
        chat = await self.session.get(ChatSession, chat_id, populate_existing=True)
        if chat is None:
            return None
        locale = await self.session.scalar(select(Customer.locale).where(Customer.id == chat.customer_id))
        return _survey(chat, locale=locale)

    async def record_score(self, chat_id: int, score: int, at: datetime) -> None:
        await self.session.execute(
            update(ChatSession).where(ChatSession.id == chat_id).values(csat_score=score, csat_answered_at=at)
        )

    async def record_comment(self, chat_id: int, comment: str, at: datetime) -> None:
        await self.session.execute(
            update(ChatSession).where(ChatSession.id == chat_id).values(csat_comment=comment)
        )

    async def add_answer_turn(
        self, chat_id: int, communication_id: int | None, body: str, note: str, at: datetime
    ) -> None:
        if communication_id is not None:
            self.session.add(
                ChatMessage(
                    session_id=chat_id,
                    author="customer",
                    communication_id=communication_id,
                    body=body,
                    created_at=at,
                )
            )
            # The answer is the customer's last message: the lists' "Last message" says so.
            await self.session.execute(
                update(ChatSession)
                .where(
                    ChatSession.id == chat_id,
                    or_(ChatSession.last_message_at.is_(None), ChatSession.last_message_at < at),
                )
                .values(last_message_at=at)
            )
        self.session.add(ChatMessage(session_id=chat_id, author="system", body=note, created_at=at))
        await self.session.flush()


class SqlSurveyDesk:
    """domain.conversations.csat.SurveyDesk, over the resolving transaction (`sending` is that unit of work)."""

    def __init__(self, session: AsyncSession, policy: CsatPolicy, sending: SendingUnitOfWork) -> None:
        self.session = session
        self.policy = policy
        self.sending = sending

    async def survey_target(self, chat_id: int) -> SurveyTarget | None:
        chat = await self.session.get(ChatSession, chat_id, populate_existing=True)
        if chat is None:
            return None
        customer_turn = await self.session.scalar(
            select(ChatMessage.id)
            .where(ChatMessage.session_id == chat_id, ChatMessage.author == "customer")
            .limit(1)
        )
        return SurveyTarget(
            chat.id, chat.customer_id, chat.channel, chat.csat_requested_at, customer_turn is not None
        )

    async def mark_requested(self, chat_id: int, message_id: int, body: str, at: datetime) -> None:
        await self.session.execute(
            update(ChatSession)
            .where(ChatSession.id == chat_id)
            .values(csat_requested_at=at, csat_score=None, csat_answered_at=None, csat_comment=None)
        )
        self.session.add(
            ChatMessage(
                session_id=chat_id, author="bot", communication_id=message_id, body=body, created_at=at
            )
        )
        await self.session.flush()

    async def note(self, chat_id: int, body: str, at: datetime) -> None:
        self.session.add(ChatMessage(session_id=chat_id, author="system", body=body, created_at=at))
        await self.session.flush()


class SqlCsatUnitOfWork(SqlUnitOfWork):
    """Satisfies domain.conversations.csat.CsatUnitOfWork: answers from the email links."""

    csat: SqlSurveyAnswers

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.csat = SqlSurveyAnswers(self.session)
        return self
