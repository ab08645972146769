"""Telegram Bot API: sending through aiogram's Bot and reading webhook updates."""

from __future__ import annotations

import aiohttp
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import BufferedInputFile, Message

from domain.delivery.ports import (
    OutboundMessage,
    ProviderAcceptance,
    ProviderError,
)
from domain.vocabulary import Channel, MessageStatus, Provider
from providers.telegram.client import TelegramOff, telegram_bot
from switchboard.settings import Settings

#: Header Telegram sends with every webhook when setWebhook was given a secret_token.

_CREDENTIALS_BACKOFF_SECONDS = 300.0


#: The longest caption Telegram takes on a photo or document.
CAPTION_LIMIT = 1024


class TelegramDriver:
    """Sends text to a Telegram chat id through aiogram, against any Bot API base URL.

    The Bot API has no idempotency key, so a send that timed out is reported as in doubt.
    """

    channel: Channel = Channel.TELEGRAM
    provider: str = Provider.TELEGRAM
    receipts_name_our_id: bool = False

    def __init__(
        self, bot_token: str, base_url: str = "https://api.telegram.org", *, timeout_seconds: float = 15.0
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.bot = telegram_bot(bot_token, base_url, timeout_seconds=timeout_seconds)

    async def send(self, message: OutboundMessage) -> ProviderAcceptance:
        try:
            chat_id = int(message.to)
        except ValueError as exc:
            raise ProviderError(
                f"telegram: {message.to!r} is not a chat id", code="bad_chat_id", permanent=True
            ) from exc
        try:
            sent = await self._send(chat_id, message)
        except TelegramRetryAfter as exc:
            raise ProviderError(
                str(exc), code="429", retry_after=float(exc.retry_after), channel_wide=True
            ) from exc
        except TelegramForbiddenError as exc:
            # The customer blocked the bot or left the chat: nothing we send will arrive.
            raise ProviderError(str(exc), code="403", permanent=True) from exc
        except (TelegramBadRequest, TelegramNotFound) as exc:
            # "chat not found", "message is too long" and the like: the request itself is wrong.
            raise ProviderError(str(exc), code="400", permanent=True) from exc
        except TelegramOff as exc:
            # No token here: no send can work until one is set, so the message fails now, not after retries.
            raise ProviderError(str(exc), code="telegram_off", permanent=True) from exc
        except TelegramUnauthorizedError as exc:
            raise ProviderError(
                str(exc), code="401", retry_after=_CREDENTIALS_BACKOFF_SECONDS, channel_wide=True
            ) from exc
        except TelegramServerError as exc:
            raise ProviderError(str(exc), code="5xx") from exc
        except TelegramNetworkError as exc:
            never_sent = isinstance(exc.__cause__, aiohttp.ClientConnectorError)
            raise ProviderError(str(exc), code="network", maybe_accepted=not never_sent) from exc
        # Telegram answers with the message as it now stands in the customer's chat, and sends no receipts
        # after it: this answer is the delivery (the chat widget's and WhatsApp's "delivered" come later).
        return ProviderAcceptance(
            provider_message_id=f"{sent.chat.id}:{sent.message_id}", status=MessageStatus.DELIVERED
        )

    async def _send(self, chat_id: int, message: OutboundMessage) -> Message:
        """The words, or a file with the words as caption: uploaded (multipart) when the dispatcher handed
        over its kept bytes, else by its signed link (Telegram then fetches it, so the public URL must be
        reachable from Telegram); a caption too long for Telegram goes as text, with the link in its words."""
        file = message.attachment
        if file is None or len(message.body) > CAPTION_LIMIT:
            return await self.bot.send_message(chat_id=chat_id, text=message.body)
        sent: str | BufferedInputFile = file.url
        if file.content is not None:
            sent = BufferedInputFile(file.content, filename=file.filename)
        if file.content_type in ("image/jpeg", "image/png", "image/webp"):
            return await self.bot.send_photo(chat_id=chat_id, photo=sent, caption=message.body)
        return await self.bot.send_document(chat_id=chat_id, document=sent, caption=message.body)

    async def close(self) -> None:
        await self.bot.session.close()


def driver_from(settings: Settings) -> TelegramDriver:
    return TelegramDriver(
        settings.telegram_bot_token.get_secret_value(),
        settings.telegram_base_url,
        timeout_seconds=settings.provider_timeout_seconds,
    )
