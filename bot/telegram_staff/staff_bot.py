"""Builds the staff Telegram bot: the webhook entry the web app calls, and long polling for local development."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot, Dispatcher

from bot.command_runner import CommandRunner
from bot.telegram_staff.conversations import ConversationDesk
from bot.telegram_staff.handlers import TelegramStaffFrontEnd
from providers.telegram.client import telegram_bot
from switchboard.settings import Settings

log = logging.getLogger(__name__)

TelegramStaffHandler = Callable[[dict[str, Any]], Awaitable[None]]


def build_staff_bot(settings: Settings) -> Bot:
    # The base URL is configurable so the sandbox and tests can stand in for api.telegram.org.
    return telegram_bot(settings.telegram_bot_token.get_secret_value(), settings.telegram_base_url)


def build_staff_dispatcher(
    settings: Settings, runner: CommandRunner, conversations: ConversationDesk | None = None
) -> Dispatcher:
    # No FSM: every staff message is a whole command, so there is no conversation state to keep.
    dispatcher = Dispatcher(disable_fsm=True)
    front_end = TelegramStaffFrontEnd(
        runner, business_name=settings.business_name, conversations=conversations
    )
    dispatcher.include_router(front_end.router())
    return dispatcher


@dataclass(frozen=True)
class TelegramStaffBot:
    """The callable POST /webhooks/telegram hands each staff update to, and how to release its Bot."""

    handle: TelegramStaffHandler
    close: Callable[[], Awaitable[None]]


def build_telegram_staff(
    settings: Settings, runner: CommandRunner, conversations: ConversationDesk | None = None
) -> TelegramStaffBot:
    """The staff bot the Telegram webhook route feeds (each update is the raw JSON dict)."""
    bot = build_staff_bot(settings)
    dispatcher = build_staff_dispatcher(settings, runner, conversations)

    async def handle_staff_update(update: dict[str, Any]) -> None:
        # feed_raw_update validates the dict into an Update and runs the handlers to completion, so a
        # webhook answers only after the reply went out (Telegram waits up to 60 s per update).
        try:
            await dispatcher.feed_raw_update(bot, update)
        except Exception:
            # Swallowed (and logged) on purpose: an error answer makes Telegram redeliver the update,
            # which would run the same command a second time.
            log.exception("Telegram staff update %s failed", update.get("update_id"))

    return TelegramStaffBot(handle_staff_update, bot.session.close)


async def run_staff_polling(settings: Settings, runner: CommandRunner) -> None:
    """Long polling for local development, when Telegram cannot reach a webhook.

    getUpdates and a webhook exclude each other, so the webhook is removed first; customers writing
    to the same bot would reach the staff handlers too, so use a separate development bot token.
    """
    bot = build_staff_bot(settings)
    dispatcher = build_staff_dispatcher(settings, runner)
    try:
        await bot.delete_webhook(drop_pending_updates=False)
        log.info("Telegram staff bot: long polling")
        await dispatcher.start_polling(bot, handle_signals=False)
    finally:
        await bot.session.close()
