"""The one way Switchboard builds an aiogram `Bot`: customer sends, the staff bot and report delivery."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

TELEGRAM_API = "https://api.telegram.org"


def telegram_bot(token: str, base_url: str = TELEGRAM_API, *, timeout_seconds: float | None = None) -> Bot:
    """A Bot talking to `base_url` (configurable so the sandbox can stand in for api.telegram.org)."""
    api = TelegramAPIServer.from_base(base_url)
    session = (
        AiohttpSession(api=api)
        if timeout_seconds is None
        else AiohttpSession(api=api, timeout=timeout_seconds)
    )
    return Bot(token=token, session=session)
