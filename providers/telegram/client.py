"""The one way Switchboard builds an aiogram `Bot`: customer sends, the staff bot and report delivery."""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramUnauthorizedError
from aiogram.methods.base import TelegramMethod, TelegramType

TELEGRAM_API = "https://api.telegram.org"
#: What a Bot carries when no token is configured: well formed for aiogram, never sent anywhere.
NO_TOKEN = "0:switchboard-telegram-is-off"  # noqa: S105 (a placeholder, not a secret)
TELEGRAM_OFF = "Telegram is off: SWITCHBOARD_TELEGRAM_BOT_TOKEN is empty"


class TelegramOff(TelegramUnauthorizedError):
    """A call made while Telegram is off (no token): nothing was sent, and nothing will be until a token is
    set; the customer driver fails the message at once (providers/telegram/driver.py)."""

    def __str__(self) -> str:
        return TELEGRAM_OFF


class TelegramOffSession(AiohttpSession):
    """The session of a Bot built without a token: every call fails at once with TelegramOff, in words, and
    nothing leaves the machine. A business that does not use Telegram can then leave the token empty and every
    process still starts."""

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109
    ) -> TelegramType:
        raise TelegramOff(method=method, message=TELEGRAM_OFF)


def telegram_bot(token: str, base_url: str = TELEGRAM_API, *, timeout_seconds: float | None = None) -> Bot:
    """A Bot talking to `base_url` (configurable so the sandbox can stand in for api.telegram.org); with an
    empty token, one whose every call fails with TELEGRAM_OFF."""
    api = TelegramAPIServer.from_base(base_url)
    options: dict[str, Any] = (
        {"api": api} if timeout_seconds is None else {"api": api, "timeout": timeout_seconds}
    )
    if not token.strip():
        return Bot(token=NO_TOKEN, session=TelegramOffSession(**options))
    return Bot(token=token, session=AiohttpSession(**options))
