"""The agent desk's rules: who takes a new conversation, and which moves a conversation can make.

Pure functions over plain values; the use-cases in `domain/conversations/use_cases.py` apply them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.vocabulary import Availability, ChatStatus

#: A customer writing within this time of a resolved conversation reopens it; later starts a new one.
REOPEN_WITHIN = timedelta(days=7)
#: The longest a conversation can be snoozed.
LONGEST_SNOOZE = timedelta(days=30)

#: How staff are shown a status (resolved is stored as closed).
STATUS_WORDS = {ChatStatus.CLOSED.value: "resolved"}
#: Statuses a customer's new message joins (snoozed and pending wake up as open).
LIVE_STATUSES = (ChatStatus.OPEN, ChatStatus.PENDING, ChatStatus.SNOOZED)


class DeskError(ValueError):
    """A move the conversation cannot make now; the message says why, for the staff member."""


@dataclass(frozen=True)
class AgentLoad:
    """An agent as automatic assignment sees them."""

    staff_id: int
    name: str
    email: str
    availability: Availability
    open_chats: int
    capacity: int


@dataclass(frozen=True)
class DeskChat:
    """A conversation as the desk sees it."""

    chat_id: int
    customer_id: int
    customer_name: str
    channel: str
    status: ChatStatus
    assigned_staff_id: int | None
    assigned_name: str | None
    snoozed_until: datetime | None
    last_message_at: datetime | None


def choose_agent(agents: Sequence[AgentLoad]) -> AgentLoad | None:
    """The online agent with the fewest open conversations and room for one more (ties: the longest
    on staff, i.e. the lowest id, so the choice is the same on every worker); None when nobody is free."""
    free = [a for a in agents if a.availability is Availability.ONLINE and a.open_chats < a.capacity]
    return min(free, key=lambda a: (a.open_chats, a.staff_id), default=None)


def find_agent(agents: Sequence[AgentLoad], wanted: str | None, me: int) -> AgentLoad | None:
    """The agent named by email or name (any case); None or "me" is the staff member asking."""
    key = (wanted or "me").strip().casefold()
    if key == "me":
        return next((a for a in agents if a.staff_id == me), None)
    return next((a for a in agents if key in (a.email.casefold(), a.name.casefold())), None)


def check_resolve(chat: DeskChat) -> None:
    if chat.status is ChatStatus.CLOSED:
        raise DeskError(f"Conversation {chat.chat_id} is already resolved.")


def check_reopen(chat: DeskChat) -> None:
    if chat.status is not ChatStatus.CLOSED and chat.status is not ChatStatus.SNOOZED:
        raise DeskError(f"Conversation {chat.chat_id} is {chat.status.value}, not resolved or snoozed.")


def check_snooze(chat: DeskChat, until: datetime, now: datetime) -> None:
    if chat.status is ChatStatus.CLOSED:
        raise DeskError(f"Conversation {chat.chat_id} is resolved; reopen it before snoozing.")
    if until <= now:
        raise DeskError("Snooze until a time in the future.")
    if until - now > LONGEST_SNOOZE:
        raise DeskError(f"A conversation can be snoozed for {LONGEST_SNOOZE.days} days at most.")


def check_assignee(chat: DeskChat, agent: AgentLoad | None, wanted: str) -> AgentLoad:
    if agent is None:
        raise DeskError(f"There is no agent “{wanted}”. Agents, managers and admins can take conversations.")
    if chat.status is ChatStatus.CLOSED:
        raise DeskError(f"Conversation {chat.chat_id} is resolved; reopen it before assigning it.")
    return agent
