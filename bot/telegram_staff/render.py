"""Turns the platform-neutral Reply into Telegram HTML text, an inline keyboard, photos and documents."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.fixed_width import table_lines
from bot.replies import Button, Reply, Table

# Telegram limits (core.telegram.org/bots/api): longer text is refused, so it is cut instead.
MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
BUTTONS_PER_ROW = 2

#: Marks callback data Switchboard wrote, so other bots' or stale formats are ignored.
CALLBACK_PREFIX = "sb:"

STYLE_MARK = {"primary": "✅ ", "danger": "⚠️ ", "default": ""}


@dataclass(frozen=True)
class PressedButton:
    command: str
    label: str
    confirm: bool


class ButtonCommands:
    """Remembers which command each drawn button runs.

    Telegram caps callback_data at 64 bytes, far less than a command can be, so the button carries a
    short random id and the command stays here. The map is bounded; a press on a button forgotten
    (evicted, or before a restart) is answered with "send the command again".
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._by_id: OrderedDict[str, PressedButton] = OrderedDict()

    def remember(self, button: Button, *, confirm: bool) -> str:
        key = secrets.token_urlsafe(9)  # 12 characters: unguessable, so nobody can run another's button
        self._by_id[key] = PressedButton(command=button.command, label=button.label, confirm=confirm)
        while len(self._by_id) > self.capacity:
            self._by_id.popitem(last=False)
        data = CALLBACK_PREFIX + key
        assert len(data.encode()) <= CALLBACK_DATA_LIMIT
        return data

    def recall(self, callback_data: str | None) -> PressedButton | None:
        if not callback_data or not callback_data.startswith(CALLBACK_PREFIX):
            return None
        return self._by_id.get(callback_data[len(CALLBACK_PREFIX) :])


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table_as_pre(table: Table, limit: int) -> str:
    return "<pre>" + escape("\n".join(table_lines(table, budget=limit - len("<pre></pre>")))) + "</pre>"


def render_html(reply: Reply, limit: int = MESSAGE_LIMIT) -> str:
    """The reply as Telegram HTML (parse_mode=HTML); everything from data is escaped."""
    parts: list[str] = []
    if reply.title:
        parts.append(f"<b>{escape(reply.title)}</b>")
    if reply.text:
        parts.append(escape(reply.text))
    if reply.fields:
        parts.append("\n".join(f"<b>{escape(f.label)}:</b> {escape(f.value)}" for f in reply.fields))
    body = "\n\n".join(parts)
    if reply.table is not None:
        room = limit - len(body) - 2
        if room > 100:
            body = f"{body}\n\n{table_as_pre(reply.table, room)}" if body else table_as_pre(reply.table, room)
    if len(body) > limit:
        # Cutting HTML could leave a tag open, which Telegram rejects: fall back to escaped plain text.
        body = escape(clip(reply.text or reply.title or "", limit - 20))
    return body or escape("(no text)")


def render_plain(reply: Reply, limit: int = MESSAGE_LIMIT) -> str:
    """The reply as plain text (no parse mode), for when Telegram refuses the HTML version."""
    parts = [part for part in (reply.title, reply.text) if part]
    if reply.fields:
        parts.append("\n".join(f"{f.label}: {f.value}" for f in reply.fields))
    if reply.table is not None:
        parts.append("\n".join(table_lines(reply.table, budget=limit // 2)))
    return clip("\n\n".join(parts), limit) or "(no text)"


def render_keyboard(reply: Reply, buttons: ButtonCommands) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    drawn = [
        InlineKeyboardButton(
            text=STYLE_MARK[b.style] + b.label, callback_data=buttons.remember(b, confirm=reply.confirm)
        )
        for b in reply.buttons
    ]
    rows = [drawn[i : i + BUTTONS_PER_ROW] for i in range(0, len(drawn), BUTTONS_PER_ROW)]
    return InlineKeyboardMarkup(inline_keyboard=rows)
