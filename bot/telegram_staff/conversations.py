"""Live chat in the staff bot's private chats, the Telegram side: a conversation's turn as a message with the
desk's buttons, and what those buttons run.

Replying to such a message answers the customer (see `switchboard.chat_threads.TelegramConversationDesk`).
The buttons carry their move and conversation id in the callback data ("lc:resolve:42"), so they keep working
after a restart and from any process; the command they run checks the presser's permissions as typed ones do.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from html import escape
from typing import Protocol

from aiogram import Bot
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters

from bot.commands.masking import mask_phone
from bot.delivery_outcomes import FOLLOW_UP_TEMPLATE, failure_reason, window_closed
from bot.telegram_staff.render import MESSAGE_LIMIT, clip
from domain.conversations.attachments import attachment_path
from domain.conversations.delivery_echoes import PostNotTaken, PostRefused
from domain.conversations.desk import STATUS_WORDS
from domain.conversations.slack_threads import (
    DeliveryEcho,
    ThreadAnswer,
    ThreadCard,
    ThreadTurn,
)
from domain.conversations.telegram_desk import TelegramEcho
from domain.messages.words import CHAT_CHANNEL_WORDS
from domain.vocabulary import ChatStatus, MessageStatus

#: "lc:<move>:<conversation id>" -> the command it runs.
LIVE_CHAT_CALLBACK = re.compile(r"^lc:(assign|resolve|reopen|snooze):(\d{1,12})$")
MOVES = {
    "assign": "chat assign {id} to me",
    "resolve": "chat resolve {id}",
    "reopen": "chat reopen {id}",
    "snooze": "chat snooze {id} for 2h",
}


@dataclass(frozen=True)
class StaffFile:
    """A photo or document an agent sent with a reply, as Telegram names it (fetched with getFile)."""

    file_id: str
    name: str
    declared_type: str | None
    size: int | None


class ConversationDesk(Protocol):
    """What the staff bot asks of live chat when an agent replies to a forwarded message."""

    async def answer(
        self,
        telegram_chat_id: int,
        replied_to: int,
        message_id: int,
        text: str,
        telegram_user_id: int,
        file: StaffFile | None = None,
    ) -> ThreadAnswer | None: ...


def command_of_callback(data: str | None) -> str | None:
    """The desk command a live-chat button runs, or None when the data is not one of ours."""
    match = LIVE_CHAT_CALLBACK.match(data or "")
    return MOVES[match[1]].format(id=match[2]) if match else None


def keyboard(card: ThreadCard) -> InlineKeyboardMarkup:
    moves = ["reopen"] if card.status is ChatStatus.CLOSED else ["assign", "resolve", "snooze"]
    labels = {"assign": "Assign to me", "resolve": "Resolve", "reopen": "Reopen", "snooze": "Snooze 2 h"}
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=labels[move], callback_data=f"lc:{move}:{card.chat_id}")
                for move in moves
            ]
        ]
    )


def turn_html(turn: ThreadTurn, card: ThreadCard, public_url: str, shown: Collection[str]) -> str:
    channel = CHAT_CHANNEL_WORDS.get(card.channel, card.channel)
    name = (card.customer_name or "A customer") if "name" in shown else f"Customer {card.customer_id}"
    who = escape(name)
    if card.customer_phone:
        who += " · " + escape(card.customer_phone if "phone" in shown else mask_phone(card.customer_phone))
    status = STATUS_WORDS.get(card.status.value, card.status.value)
    holder = f"with {escape(card.assignee)}" if card.assignee else "unassigned"
    head = f"💬 <b>Conversation {card.chat_id}</b> · {channel} · {who} ({status}, {holder})"
    body = escape(turn.body) + "".join(
        f'\n📎 <a href="{escape(public_url.rstrip("/") + attachment_path(file.id))}">{escape(file.label)}</a>'
        for file in turn.files
    )
    if turn.author == "customer":
        said = f"<b>{escape(name)}</b>: {body}"
    elif turn.author == "staff" and turn.is_note:
        said = f"📝 <b>Note by {escape(turn.staff_name or 'staff')}</b>: {body}"
    elif turn.author == "staff":
        said = f"<b>{escape(turn.staff_name or 'Staff')}</b> replied: {body}"
    else:
        said = f"<i>{body}</i>"
    link = f'<a href="{escape(public_url.rstrip("/"))}/communication/chat/{card.chat_id}">Open in Switchboard</a>'
    tail = "Reply to this message to answer; start with note: to write only to colleagues."
    return clip(f"{head}\n{said}\n\n{link} · {tail}", MESSAGE_LIMIT)


class TelegramTurnSender:
    """domain.conversations.telegram_desk.TelegramSender over the staff bot."""

    def __init__(self, bot: Bot, public_url: str, shown_fields: Collection[str]) -> None:
        self.bot = bot
        self.public_url = public_url
        self.shown = frozenset(shown_fields)

    async def send_turn(self, telegram_user_id: int, turn: ThreadTurn, card: ThreadCard) -> int:
        sent = await self.bot.send_message(
            chat_id=telegram_user_id,
            text=turn_html(turn, card, self.public_url, self.shown),
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard(card) if turn.author == "customer" else None,
            disable_web_page_preview=True,
        )
        return sent.message_id

    async def send_echo(self, echo: TelegramEcho) -> int:
        try:
            sent = await self.bot.send_message(
                chat_id=echo.telegram_chat_id,
                text=echo_html(echo.echo),
                parse_mode=ParseMode.HTML,
                # As a reply to what the agent wrote; should they have deleted it, the words still come.
                reply_parameters=ReplyParameters(
                    message_id=echo.message_id, allow_sending_without_reply=True
                ),
                disable_web_page_preview=True,
            )
        except (TelegramForbiddenError, TelegramBadRequest) as error:  # blocked the bot; no such chat
            raise PostRefused(str(error)) from error
        except (TelegramRetryAfter, TelegramNetworkError, TelegramServerError):
            raise  # flood control or Telegram away: the pass stops, the rest waits
        except TelegramAPIError as error:
            raise PostNotTaken(str(error)) from error
        return sent.message_id


def echo_html(echo: DeliveryEcho) -> str:
    """What happened to the agent's reply, as the Slack thread says it (bot/delivery_outcomes.py)."""
    channel = CHAT_CHANNEL_WORDS.get(echo.channel, echo.channel)
    if echo.status is MessageStatus.DELIVERED:
        return f"✅ Delivered by {escape(channel)}."
    if echo.status is MessageStatus.READ:
        return "👀 Read by the customer."
    said = f"⚠️ Not delivered by {escape(channel)}: {escape(failure_reason(echo))}."
    if window_closed(echo) and echo.customer_id is not None:
        said += (
            " Once they write back, send your reply again; or send the approved follow-up template now: "
            f"<code>send whatsapp to #{echo.customer_id} template {FOLLOW_UP_TEMPLATE}</code>"
        )
    return said


def answer_words(outcome: ThreadAnswer) -> str | None:
    """What the agent is told after replying to a forwarded message."""
    if outcome.say:
        return outcome.say
    if outcome.kind == "sent":
        return "✓ Sent to the customer."
    if outcome.kind == "note":
        return "📝 Note saved: only staff see it."
    return None
