"""The clinician's staff-bot message when their patient is in the waiting room, with a "Join now" URL button."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.telegram_staff.render import MESSAGE_LIMIT, clip
from domain.video.waiting_room import WaitingPatient, waiting_words


class TelegramWaitingRoom:
    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def tell(self, telegram_user_id: int, patient: WaitingPatient, join_link: str) -> None:
        # The link is in the words too: Telegram refuses URL buttons to some addresses (a local demo's).
        await self._bot.send_message(
            chat_id=telegram_user_id,
            text=clip(f"{waiting_words(patient)}\nJoin now: {join_link}", MESSAGE_LIMIT),
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="Join now", url=join_link)]]
            ),
            disable_web_page_preview=True,
        )
