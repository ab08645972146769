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
STATUS_WORDS = {ChatStatus.CLOSED.value: "resolved", ChatStatus.PENDING.value: "waiting for the customer"}
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
    #: The team the agent works in: their clinic's code ("BER") and name; None: every clinic's.
    team: str | None = None
    team_name: str | None = None


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
    #: The customer was erased at their request: nothing more is written in the conversation.
    customer_erased: bool = False


def choose_agent(agents: Sequence[AgentLoad], team: str | None = None) -> AgentLoad | None:
    """The online agent with the fewest open conversations and room for one more (ties: the longest
    on staff, i.e. the lowest id, so the choice is the same on every worker); None when nobody is free.

    With `team` (the customer's clinic), a free agent of that clinic comes first; when none is free, the
    conversation goes to whoever is, rather than wait."""
    free = [a for a in agents if a.availability is Availability.ONLINE and a.open_chats < a.capacity]
    own = [a for a in free if team is not None and a.team == team]
    return min(own or free, key=lambda a: (a.open_chats, a.staff_id), default=None)


def find_agent(agents: Sequence[AgentLoad], wanted: str | None, me: int) -> AgentLoad | None:
    """The agent named by email or name (any case), or, for a team (a clinic's code or name), its free
    agent with the fewest conversations; None or "me" is the staff member asking."""
    key = (wanted or "me").strip().casefold()
    if key == "me":
        return next((a for a in agents if a.staff_id == me), None)
    person = next((a for a in agents if key in (a.email.casefold(), a.name.casefold())), None)
    if person is not None:
        return person
    team = [a for a in agents if a.team and key in (a.team.casefold(), (a.team_name or "").casefold())]
    if not team:
        return None
    free = [a for a in team if a.availability is Availability.ONLINE and a.open_chats < a.capacity]
    if not free:
        raise DeskError(
            f"Nobody at {team[0].team_name or team[0].team} is online with room for another conversation."
        )
    return min(free, key=lambda a: (a.open_chats, a.staff_id))


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
