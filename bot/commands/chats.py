"""`chat list|open|assign|resolve|reopen|snooze`, `away`, `back`: the live-chat desk from Slack, Telegram or the console."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from bot.commands.context import CommandContext
from bot.commands.conversation_looks import STATES
from bot.commands.parsing import ParseError, RecipientRef, recipient_ref
from bot.replies import Button, Field, Reply, Table
from domain.conversations.desk import STATUS_WORDS, DeskChat, DeskError
from domain.conversations.model import ChatNotFound
from domain.conversations.opening import OpenedChat, channel_words, open_conversation
from domain.conversations.use_cases import (
    DeskActor,
    assign_chat,
    reopen_chat,
    resolve_chat,
    set_availability,
    snooze_chat,
)
from domain.dates_said import day_month_time
from domain.messages.words import CHAT_CHANNEL_WORDS
from domain.staff import StaffIdentity
from domain.vocabulary import Availability, Channel, ChatStatus
from storage.queries.chats import DESK_VIEWS, desk_count, desk_queue
from storage.queries.customers import customers_by_reference

LIST_USAGE = "chat list [mine|unassigned|open|snoozed|resolved]"
ASSIGN_USAGE = "chat assign ID [to me|EMAIL|NAME]"
RESOLVE_USAGE = "chat resolve ID"
REOPEN_USAGE = "chat reopen ID"
OPEN_USAGE = "chat open CUSTOMER [on whatsapp|telegram|sms|email]"
SNOOZE_USAGE = "chat snooze ID for 2h|30m|3d, or until tomorrow|YYYY-MM-DD [HH:MM]"
LIST_LIMIT = 25
_CHAT_ID = re.compile(r"#?(\d{1,18})")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_DURATION = re.compile(r"(\d{1,4})\s*(m|min|mins|minutes?|h|hours?|d|days?)")
#: When "until tomorrow" wakes a conversation, in the business's timezone.
MORNING = time(9, 0)


@dataclass(frozen=True)
class ListChats:
    view: str = "mine"


@dataclass(frozen=True)
class ChatMove:
    """assign, resolve or reopen one conversation."""

    chat_id: int
    to: str | None = None


@dataclass(frozen=True)
class SnoozeChat:
    chat_id: int
    #: Either a length of time from now, or a wall-clock time in the business's timezone.
    duration: timedelta | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class SetAvailability:
    availability: Availability


def _chat_id(words: list[str], usage: str) -> int:
    found = _CHAT_ID.fullmatch(words[0]) if words else None
    if found is None:
        raise ParseError("Name the conversation by its number (`chat list` shows them).", usage)
    return int(found.group(1))


def parse_list(words: list[str], rest: str, today: date) -> ListChats:
    view = words[0].lower() if words else "mine"
    view = STATES.get(view, view)  # "closed", "waiting", "offen": the queue people mean
    if len(words) > 1 or view not in DESK_VIEWS:
        raise ParseError(f"Which queue? One of: {', '.join(DESK_VIEWS)}.", LIST_USAGE)
    return ListChats(view)


def parse_assign(words: list[str], rest: str, today: date) -> ChatMove:
    chat_id = _chat_id(words, ASSIGN_USAGE)
    tail = words[1:]
    if tail and tail[0].lower() == "to":
        tail = tail[1:]
    return ChatMove(chat_id, " ".join(tail) or None)


def parse_resolve(words: list[str], rest: str, today: date) -> ChatMove:
    if len(words) != 1:
        raise ParseError("Name one conversation.", RESOLVE_USAGE)
    return ChatMove(_chat_id(words, RESOLVE_USAGE))


def parse_reopen(words: list[str], rest: str, today: date) -> ChatMove:
    if len(words) != 1:
        raise ParseError("Name one conversation.", REOPEN_USAGE)
    return ChatMove(_chat_id(words, REOPEN_USAGE))


def parse_snooze(words: list[str], rest: str, today: date) -> SnoozeChat:
    chat_id = _chat_id(words, SNOOZE_USAGE)
    how, text = (words[1].lower() if len(words) > 1 else ""), " ".join(words[2:]).lower()
    if how == "for":
        found = _DURATION.fullmatch(text.replace(" ", "")) or _DURATION.fullmatch(text)
        if found:
            amount, unit = int(found.group(1)), found.group(2)[0]
            return SnoozeChat(
                chat_id, duration=timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
            )
    if how == "until":
        if text == "tomorrow":
            return SnoozeChat(chat_id, until=datetime.combine(today + timedelta(days=1), MORNING))
        try:
            return SnoozeChat(chat_id, until=datetime.fromisoformat(text.upper().replace(" ", "T")))
        except ValueError:
            pass
    raise ParseError("Say for how long or until when.", SNOOZE_USAGE)


def parse_away(words: list[str], rest: str, today: date) -> SetAvailability:
    return SetAvailability(Availability.AWAY)


def parse_back(words: list[str], rest: str, today: date) -> SetAvailability:
    return SetAvailability(Availability.ONLINE)


def _actor(who: StaffIdentity) -> DeskActor:
    return DeskActor(who.staff_id, who.email, who.via)


def _when(moment: datetime | None, ctx: CommandContext) -> str:
    if moment is None:
        return "—"
    local = moment.astimezone(ZoneInfo(ctx.business_tz))
    return day_month_time(local)  # "7 Dec 04:17", as every other date reads


def _status(chat: DeskChat) -> str:
    return STATUS_WORDS.get(chat.status.value, chat.status.value)


def _buttons(chat: DeskChat) -> tuple[Button, ...]:
    if chat.status is ChatStatus.CLOSED:
        return (Button("Reopen", f"chat reopen {chat.chat_id}"),)
    return (
        Button("Assign to me", f"chat assign {chat.chat_id} to me"),
        Button("Snooze 2 h", f"chat snooze {chat.chat_id} for 2h"),
        Button("Resolve", f"chat resolve {chat.chat_id}", "primary"),
    )


async def run_list(command: ListChats, who: StaffIdentity, ctx: CommandContext) -> Reply:
    rows = await desk_queue(ctx.database, command.view, who.staff_id, limit=LIST_LIMIT + 1)
    title = f"Conversations: {command.view}"
    if not rows:
        return Reply(f"No conversations in “{command.view}”.", title=title)
    shown = rows[:LIST_LIMIT]
    table = Table(
        ("#", "Customer", "Channel", "Status", "Agent", "Last message"),
        tuple(
            (
                str(row.id),
                row.customer,
                CHAT_CHANNEL_WORDS.get(row.channel, row.channel),
                STATUS_WORDS.get(row.status, row.status)
                + (f" until {_when(row.snoozed_until, ctx)}" if row.snoozed_until else ""),
                row.agent or "unassigned",
                _when(row.last_message_at, ctx),
            )
            for row in shown
        ),
    )
    if len(rows) > LIST_LIMIT:  # "how many chats are open" wants the number, not the page's
        # Counted after the page was read: never fewer than it showed, whatever arrived in between.
        total = max(await desk_count(ctx.database, command.view, who.staff_id), len(rows))
        which = (
            f"the {LIST_LIMIT} most recently resolved"
            if command.view == "resolved"
            else f"the {LIST_LIMIT} waiting longest"
            if command.view == "waiting"
            else f"the {LIST_LIMIT} with the oldest last message"
        )
        said = f"{total} conversations in “{command.view}”; {which} are shown."
    else:
        said = f"{len(shown)} conversation{'s' if len(shown) != 1 else ''} in “{command.view}”."
    if command.view == "open":  # the queue holds those waiting for the customer's answer too
        said = f"{said[:-1]} (open, or waiting for the customer's answer)."
    elif command.view == "waiting":
        said = f"{said[:-1]} (the customer wrote last, and nobody has answered yet)."
    return Reply(said, title=title, table=table)


C = TypeVar("C")
DeskHandler = Callable[[C, StaffIdentity, CommandContext], Awaitable[Reply]]


def _refusals_in_words(run: DeskHandler[C]) -> DeskHandler[C]:
    """A move the conversation cannot make, or one that does not exist, is answered in words."""

    async def handle(command: C, who: StaffIdentity, ctx: CommandContext) -> Reply:
        try:
            return await run(command, who, ctx)
        except (DeskError, ChatNotFound) as error:
            return Reply(str(error), kind="error")

    return handle


@_refusals_in_words
async def run_assign(command: ChatMove, who: StaffIdentity, ctx: CommandContext) -> Reply:
    chat = await assign_chat(ctx.uow.desk(), command.chat_id, _actor(who), to=command.to, now=ctx.now())
    return Reply(
        f"Conversation {chat.chat_id} with {chat.customer_name} is now {chat.assigned_name}'s.",
        buttons=_buttons(chat),
    )


@_refusals_in_words
async def run_resolve(command: ChatMove, who: StaffIdentity, ctx: CommandContext) -> Reply:
    chat = await resolve_chat(ctx.uow.desk(), command.chat_id, _actor(who), now=ctx.now())
    return Reply(
        f"Conversation {chat.chat_id} with {chat.customer_name} is {_status(chat)}.", buttons=_buttons(chat)
    )


@_refusals_in_words
async def run_reopen(command: ChatMove, who: StaffIdentity, ctx: CommandContext) -> Reply:
    chat = await reopen_chat(ctx.uow.desk(), command.chat_id, _actor(who), now=ctx.now())
    return Reply(
        f"Conversation {chat.chat_id} with {chat.customer_name} is open again.", buttons=_buttons(chat)
    )


@_refusals_in_words
async def run_snooze(command: SnoozeChat, who: StaffIdentity, ctx: CommandContext) -> Reply:
    now = ctx.now()
    if command.duration is not None:
        until = now + command.duration
    else:
        assert command.until is not None  # the parser gives one or the other
        until = command.until.replace(tzinfo=ZoneInfo(ctx.business_tz))
    chat = await snooze_chat(
        ctx.uow.desk(), command.chat_id, _actor(who), until=until, now=now, timezone=ctx.business_tz
    )
    return Reply(
        f"Conversation {chat.chat_id} with {chat.customer_name} is snoozed until {_when(until, ctx)}; "
        "it comes back sooner if the customer writes.",
        buttons=_buttons(chat),
    )


async def run_availability(command: SetAvailability, who: StaffIdentity, ctx: CommandContext) -> Reply:
    await set_availability(ctx.uow.desk(), _actor(who), command.availability)
    if command.availability is Availability.AWAY:
        return Reply("You are away: new conversations go to other agents. `back` when you return.")
    return Reply(
        "Welcome back: new conversations can be assigned to you again.",
        buttons=(Button("My conversations", "chat list mine"),),
    )


# --- `chat open`: staff start a conversation ----------------------------------------------------------------

#: The channel words `chat open ... on X` understands.
_OPEN_CHANNELS = {
    "whatsapp": Channel.WHATSAPP,
    "wa": Channel.WHATSAPP,
    "telegram": Channel.TELEGRAM,
    "sms": Channel.SMS,
    "text": Channel.SMS,
    "email": Channel.EMAIL,
    "e-mail": Channel.EMAIL,
    "mail": Channel.EMAIL,
    "chat": Channel.CHAT,
    "website": Channel.CHAT,
}


@dataclass(frozen=True)
class OpenChat:
    customer: RecipientRef
    channel: Channel | None = None  # None: their preferred channel, else the one they last used

    def command_text(self, customer: str) -> str:
        return f"chat open {customer}" + (f" on {self.channel.value}" if self.channel else "")


def parse_open(words: list[str], rest: str, today: date) -> OpenChat:
    channel: Channel | None = None
    if len(words) >= 2 and words[-2].lower() == "on":
        wanted = words[-1].lower().strip(".,!")
        if wanted not in _OPEN_CHANNELS:
            raise ParseError(
                f"“{words[-1]}” is not a channel; say whatsapp, telegram, sms or email.", OPEN_USAGE
            )
        channel, words = _OPEN_CHANNELS[wanted], words[:-2]
    if not words:
        raise ParseError("Say who to talk to: #customer-id, +phone, email or name.", OPEN_USAGE)
    return OpenChat(recipient_ref(" ".join(words)), channel)


def _opened_reply(opened: OpenedChat, ctx: CommandContext) -> Reply:
    link = f"{ctx.settings.public_url.rstrip('/')}/communication/chat/{opened.chat_id}"
    words = channel_words(opened.channel)
    if opened.created:
        text = (
            f"Opened conversation {opened.chat_id} with {opened.customer_name} on {words} ({opened.because})."
        )
    else:
        text = (
            f"{opened.customer_name} already has conversation {opened.chat_id} open on {words}; here it is."
        )
    fields = [
        Field("Conversation", str(opened.chat_id)),
        Field("Channel", words),
        Field("Agent", opened.assigned_name or "nobody yet"),
        Field("Dashboard", link),
    ]
    if opened.note:
        fields.append(Field("Note", opened.note))
    return Reply(text, title="Conversation open", fields=tuple(fields))


@_refusals_in_words
async def run_open(command: OpenChat, who: StaffIdentity, ctx: CommandContext) -> Reply:
    customers = await customers_by_reference(ctx.database, command.customer.kind, command.customer.value)
    if not customers:
        return Reply(f"No customer matches {command.customer.text}.", kind="error")
    if len(customers) > 1:
        return Reply(
            f"{len(customers)} customers match “{command.customer.value}”; pick one.",
            buttons=tuple(Button(c.label, command.command_text(f"#{c.id}")) for c in customers[:5]),
            private=True,
        )
    opened = await open_conversation(
        ctx.uow.chat_opening(), customers[0].id, _actor(who), channel=command.channel, now=ctx.now()
    )
    return _opened_reply(opened, ctx)
