"""Live chats as the chat pages show them: open and recently closed conversations, one conversation's turns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.orm import aliased

from domain.conversations.attachments import TurnFile
from domain.conversations.desk import DeskChat
from domain.conversations.model import ChatReplyTarget
from domain.vocabulary import ChatStatus
from storage.database import Database
from storage.desk import SqlChatDesk
from storage.models import ChatMessage, ChatSession, Customer, CustomerCommunication, StaffUser
from storage.queries.chat_attachments import turn_files

OPEN_STATUSES = (ChatStatus.OPEN.value, ChatStatus.PENDING.value)


@dataclass(frozen=True)
class ChatSummary:
    id: int
    customer_id: int
    customer: str
    channel: str
    status: str
    subject: str | None
    started_at: datetime
    last_message_at: datetime | None
    first_response_at: datetime | None
    #: CSAT: the customer's answer to the survey sent on resolve (None: none sent, or not answered).
    csat_score: int | None = None
    csat_comment: str | None = None
    #: The customer's first turn since staff last answered them (None: answered, nothing waits on staff).
    waiting_since: datetime | None = None
    #: The staff member the conversation is assigned to (None: nobody yet).
    agent: str | None = None

    def reply_target(self) -> ChatReplyTarget:
        return ChatReplyTarget(self.id, self.customer_id, self.channel, self.subject, self.customer)


@dataclass(frozen=True)
class ChatTurn:
    author: str  # customer, staff or system
    staff_name: str | None
    body: str
    created_at: datetime
    #: An internal note between staff: never sent to the customer.
    is_note: bool = False
    #: A staff reply's message status (planned, sent, delivered, read, failed, ...); None for other turns.
    delivery_status: str | None = None
    #: Why a staff reply was not sent or delivered, as the provider or the consent check said it.
    delivery_reason: str | None = None
    #: The turn's chat_messages id (the live page names the last one it shows and streams the rest).
    id: int = 0
    #: The images and PDFs the customer sent with it (kept within the size and type rules).
    files: tuple[TurnFile, ...] = ()


@dataclass(frozen=True)
class ReplySent:
    """A staff reply's message, to say what became of it."""

    id: int
    channel: str
    status: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class ChatConversation:
    chat: ChatSummary
    turns: list[ChatTurn]
    sent: ReplySent | None


_waited = aliased(ChatMessage, name="waited")
_answered = aliased(ChatMessage, name="answered")
#: When the customer's oldest turn that staff have not answered yet was written: their first turn after the
#: last staff reply (a note answers nobody); NULL when the last word was staff's.
WAITING_SINCE = (
    select(func.min(_waited.created_at))
    .where(
        _waited.session_id == ChatSession.id,
        _waited.author == "customer",
        # Since it was (re)opened: what came before a resolve was answered by resolving it.
        _waited.created_at >= func.coalesce(ChatSession.reopened_at, ChatSession.started_at),
        ~exists()
        .where(
            _answered.session_id == ChatSession.id,
            _answered.author == "staff",
            _answered.is_note.is_(False),
            _answered.created_at >= _waited.created_at,
        )
        .correlate_except(_answered),
    )
    .correlate(ChatSession)
    .scalar_subquery()
)


def _summary(
    chat: ChatSession, customer: str, waiting_since: datetime | None = None, agent: str | None = None
) -> ChatSummary:
    return ChatSummary(
        chat.id,
        chat.customer_id,
        customer,
        chat.channel,
        chat.status,
        chat.subject,
        chat.started_at,
        chat.last_message_at,
        chat.first_response_at,
        chat.csat_score if chat.csat_answered_at is not None else None,
        chat.csat_comment,
        waiting_since,
        agent,
    )


def _with_customer() -> Select[ChatSession, str, str | None]:
    """Conversations with their customer's name and their agent's (None: unassigned)."""
    return (
        select(ChatSession, Customer.name, StaffUser.name)
        .join(Customer, Customer.id == ChatSession.customer_id)
        .outerjoin(StaffUser, StaffUser.id == ChatSession.assigned_staff_id)
    )


async def open_chats(database: Database, limit: int = 200) -> list[ChatSummary]:
    """Open and pending conversations: those whose customer waits on staff first, the longest waiting first,
    then those staff answered last, the longest quiet first."""
    waiting = WAITING_SINCE.label("waiting_since")
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                _with_customer()
                .add_columns(waiting)
                .where(ChatSession.status.in_(OPEN_STATUSES))
                .order_by(waiting.is_(None), waiting.asc(), ChatSession.last_message_at.asc(), ChatSession.id)
                .limit(limit)
            )
        ).all()
    return [_summary(chat, name, since, agent) for chat, name, agent, since in rows]


async def recently_closed_chats(database: Database, limit: int = 20) -> list[ChatSummary]:
    """Closed conversations, the most recently started first."""
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                _with_customer()
                .where(ChatSession.status == ChatStatus.CLOSED.value)
                .order_by(ChatSession.started_at.desc())
                .limit(limit)
            )
        ).all()
    return [_summary(chat, name, agent=agent) for chat, name, agent in rows]


async def chat_conversation(database: Database, chat_id: int, sent_id: int | None) -> ChatConversation | None:
    """One conversation with its turns in order, and the reply `sent_id` if it went to this customer."""
    async with database.read_sessions() as session:
        chat = await session.get(ChatSession, chat_id)
        if chat is None:
            return None
        customer = await session.get(Customer, chat.customer_id)
        rows = (
            await session.execute(
                _turns_query()
                .where(ChatMessage.session_id == chat_id)
                .order_by(ChatMessage.created_at, ChatMessage.id)
            )
        ).all()
        sent = await session.get(CustomerCommunication, sent_id) if sent_id else None
        files = await turn_files(session, [row[0].id for row in rows])
    if sent is not None and sent.customer_id != chat.customer_id:
        sent = None
    return ChatConversation(
        _summary(chat, customer.name if customer else "—"),
        [
            _turn(m, staff_name, status, reason, payload, files.get(m.id, ()))
            for m, staff_name, status, reason, payload in rows
        ],
        None if sent is None else ReplySent(sent.id, sent.channel, sent.status, dict(sent.payload or {})),
    )


def _turns_query() -> Select[ChatMessage, str | None, str | None, str | None, dict[str, Any] | None]:
    return (
        select(
            ChatMessage,
            StaffUser.name,
            CustomerCommunication.status,
            CustomerCommunication.status_reason,
            CustomerCommunication.payload,
        )
        .outerjoin(StaffUser, StaffUser.id == ChatMessage.staff_id)
        .outerjoin(CustomerCommunication, CustomerCommunication.id == ChatMessage.communication_id)
    )


async def chat_turns_after(database: Database, chat_id: int, after: int, limit: int) -> list[ChatTurn]:
    """A conversation's turns with an id above `after`, by id (the live page streams these)."""
    query = (
        _turns_query()
        .where(ChatMessage.session_id == chat_id, ChatMessage.id > after)
        .order_by(ChatMessage.id)
        .limit(limit)
    )
    async with database.read_sessions() as session:
        rows = (await session.execute(query)).all()
        files = await turn_files(session, [row[0].id for row in rows])
    return [
        _turn(m, staff_name, status, reason, payload, files.get(m.id, ()))
        for m, staff_name, status, reason, payload in rows
    ]


def _turn(
    message: ChatMessage,
    staff_name: str | None,
    status: str | None,
    reason: str | None,
    payload: dict[str, Any] | None,
    files: tuple[TurnFile, ...] = (),
) -> ChatTurn:
    """A turn; a staff reply, and an automatic message of the business (the satisfaction survey, a greeting),
    carries its message's delivery status (a note or a customer turn none)."""
    reply = message.author in ("staff", "bot") and not message.is_note and status is not None
    why = (reason or (payload or {}).get("explanation")) if reply else None
    return ChatTurn(
        message.author,
        staff_name,
        message.body,
        message.created_at,
        is_note=bool(message.is_note),
        delivery_status=status if reply else None,
        delivery_reason=str(why) if why else None,
        id=message.id,
        files=files,
    )


# --- the agent desk's queues --------------------------------------------------------------------------------

#: The queues staff can look at: their own, nobody's, everything open, snoozed, resolved.
DESK_VIEWS = ("mine", "unassigned", "waiting", "open", "snoozed", "resolved")


@dataclass(frozen=True)
class QueuedChat:
    id: int
    customer: str
    channel: str
    status: str
    agent: str | None
    last_message_at: datetime | None
    snoozed_until: datetime | None
    #: The customer's oldest turn nobody has answered since the conversation was (re)opened; None: answered.
    waiting_since: datetime | None = None


def _in_view(view: str, staff_id: int) -> tuple[ColumnElement[bool], ...]:
    live = (ChatStatus.OPEN.value, ChatStatus.PENDING.value)
    return {
        "mine": (ChatSession.status.in_(live), ChatSession.assigned_staff_id == staff_id),
        "unassigned": (ChatSession.status.in_(live), ChatSession.assigned_staff_id.is_(None)),
        # The customer wrote last (a note answers nobody): they wait on us, not we on them.
        "waiting": (ChatSession.status == ChatStatus.OPEN.value, WAITING_SINCE.is_not(None)),
        "open": (ChatSession.status.in_(live),),
        "snoozed": (ChatSession.status == ChatStatus.SNOOZED.value,),
        "resolved": (ChatSession.status == ChatStatus.CLOSED.value,),
    }[view]


async def desk_queue(database: Database, view: str, staff_id: int, limit: int = 25) -> list[QueuedChat]:
    """One queue of the desk: those waiting on us first, the longest waiting first, then the others by
    their last message (resolved: the latest first)."""
    waiting = WAITING_SINCE.label("waiting_since")
    order: tuple[Any, ...] = (
        (ChatSession.closed_at.desc(), ChatSession.id.desc())
        if view == "resolved"
        else (waiting.is_(None), waiting, ChatSession.last_message_at, ChatSession.id)
    )
    query = (
        select(
            ChatSession.id,
            Customer.name,
            ChatSession.channel,
            ChatSession.status,
            StaffUser.name,
            ChatSession.last_message_at,
            ChatSession.snoozed_until,
            waiting,
        )
        .join(Customer, Customer.id == ChatSession.customer_id)
        .outerjoin(StaffUser, StaffUser.id == ChatSession.assigned_staff_id)
        .where(*_in_view(view, staff_id))
        .order_by(*order)
        .limit(limit)
    )
    async with database.read_sessions() as session:
        rows = (await session.execute(query)).all()
    return [QueuedChat(*row) for row in rows]


def _queue_size(view: str, staff_id: int) -> Select[int]:
    return select(func.count()).select_from(ChatSession).where(*_in_view(view, staff_id))


async def desk_count(database: Database, view: str, staff_id: int) -> int:
    """How many conversations one queue holds."""
    async with database.read_sessions() as session:
        return int(await session.scalar(_queue_size(view, staff_id)) or 0)


async def desk_counts(database: Database, staff_id: int) -> dict[str, int]:
    """How many conversations each queue holds (for the tabs), read in one snapshot."""
    async with database.read_sessions() as session:
        return {view: int(await session.scalar(_queue_size(view, staff_id)) or 0) for view in DESK_VIEWS}


async def desk_chat(database: Database, chat_id: int) -> DeskChat | None:
    """One conversation as the desk sees it: status, snooze and who holds it."""
    async with database.read_sessions() as session:
        return await SqlChatDesk(session).chat(chat_id)
