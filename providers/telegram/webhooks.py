"""Telegram webhooks: check that a callback is genuine and read it into port values."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from domain.conversations.attachments import MediaReference
from domain.conversations.model import CustomerMessage, WebhookContents, WebhookDelivery, body_digest
from domain.delivery.ports import (
    InboundMessage,
)
from domain.vocabulary import Channel, Provider
from providers.telegram.links import read_telegram_start_payload
from providers.webhook_bodies import (
    UNAUTHORIZED,
    Accepted,
    IncomingWebhook,
    MalformedWebhook,
    ReadingContext,
    WebhookAnswer,
    WebhookEndpoint,
    json_object,
)
from switchboard.settings import Settings


def verify_telegram_secret(expected: str, header_value: str | None) -> bool:
    """Compare X-Telegram-Bot-Api-Secret-Token with the secret we gave setWebhook, in constant time."""
    if not expected or header_value is None:
        return False
    return hmac.compare_digest(expected.encode(), header_value.encode())


#: Media a customer may send without words; shown in the conversation so the message is not lost.
_MEDIA = ("photo", "document", "voice", "audio", "video", "video_note", "sticker", "location", "contact")


def _media_placeholder(message: Mapping[str, Any]) -> str | None:
    """ "[photo]", "[document: invoice.pdf]" for a message with media and no words; None for anything else."""
    for kind in _MEDIA:
        if kind in message:
            content = message[kind]
            name = content.get("file_name") if isinstance(content, Mapping) else None
            return f"[{kind.replace('_', ' ')}: {name}]" if name else f"[{kind.replace('_', ' ')}]"
    return None


def message_media(message: Mapping[str, Any]) -> tuple[MediaReference, ...]:
    """The file a Telegram message carries, by its file_id (a photo: its largest size)."""
    for kind in _MEDIA:
        content = message.get(kind)
        if kind == "photo" and isinstance(content, list) and content:
            sizes = [size for size in content if isinstance(size, Mapping) and size.get("file_id")]
            content = max(sizes, key=lambda size: int(size.get("file_size") or 0), default=None)
        if not isinstance(content, Mapping) or not isinstance(content.get("file_id"), str):
            continue
        size = content.get("file_size")
        return (
            MediaReference(
                provider=Provider.TELEGRAM.value,
                locator=str(content["file_id"]),
                kind=kind,
                declared_type=str(content.get("mime_type") or "") or None,
                filename=str(content.get("file_name") or "") or None,
                declared_size=int(size) if isinstance(size, int) else None,
            ),
        )
    return ()


def parse_telegram_update(update: Mapping[str, Any], *, bot_address: str = "bot") -> InboundMessage | None:
    """Read a customer's message out of an Update; None for updates that carry no customer text."""
    message = update.get("message")
    if not isinstance(message, Mapping):
        return None
    chat = message.get("chat")
    if not isinstance(chat, Mapping) or "id" not in chat or "message_id" not in message:
        return None
    text = message.get("text") or message.get("caption") or _media_placeholder(message)
    if not isinstance(text, str):
        return None
    sender: Mapping[str, Any] = message["from"] if isinstance(message.get("from"), Mapping) else {}
    name = " ".join(str(part) for part in (sender.get("first_name"), sender.get("last_name")) if part)
    return InboundMessage(
        provider=Provider.TELEGRAM,
        channel=Channel.TELEGRAM,
        provider_message_id=f"{chat['id']}:{message['message_id']}",
        from_address=str(chat["id"]),
        to_address=bot_address,
        body=text,
        received_at=datetime.fromtimestamp(int(message.get("date", 0)), tz=UTC),
        sender_name=name or None,
        sender_language=str(sender.get("language_code") or "") or None,
    )


#: Inbox `kind` of a Telegram update.
UPDATE_KIND = "update"


def telegram_sender(update: Mapping[str, Any]) -> int | None:
    """The Telegram user behind any kind of update (message, callback_query, edited_message, ...)."""
    for key, value in update.items():
        if key == "update_id" or not isinstance(value, Mapping):
            continue
        sender = value.get("from")
        if isinstance(sender, Mapping) and isinstance(sender.get("id"), int):
            return int(sender["id"])
    return None


def read_update(delivery: WebhookDelivery, context: ReadingContext) -> WebhookContents:
    update = json_object(delivery.body, "telegram update")
    if not isinstance(update.get("update_id"), int):
        raise MalformedWebhook("telegram update has no update_id")
    sender = telegram_sender(update)
    message = parse_telegram_update(update, bot_address=context.telegram_bot_address)
    raw_message = update.get("message")
    media = message_media(raw_message) if isinstance(raw_message, Mapping) else ()
    if message is None:
        return WebhookContents(sender_user_id=sender)
    words = message.body.split()
    link = None
    if len(words) == 2 and words[0].split("@", 1)[0].casefold() == "/start":
        link = read_telegram_start_payload(context.link_secret, words[1])
    return WebhookContents(messages=(CustomerMessage(message, link, media),), sender_user_id=sender)


# --- the webhook URL: one bot, customers and staff alike -------------------------------------------------


async def accept_update(incoming: IncomingWebhook, settings: Settings) -> Accepted | WebhookAnswer:
    expected = settings.telegram_webhook_secret.get_secret_value()
    if not verify_telegram_secret(expected, incoming.header("x-telegram-bot-api-secret-token")):
        return WebhookAnswer("unauthorized", 401)
    raw = await incoming.read_body()
    update: dict[str, Any] | None = None
    try:
        update = dict(json_object(raw, "telegram update"))
    except MalformedWebhook:
        update = None
    update_id = update.get("update_id") if update else None
    key = f"update:{update_id}" if isinstance(update_id, int) else body_digest(raw)
    delivery = WebhookDelivery(Provider.TELEGRAM.value, UPDATE_KIND, key, raw.decode("utf-8", "replace"))
    return Accepted(delivery, WebhookAnswer(""), staff_update=update)


ENDPOINTS = (
    WebhookEndpoint(
        "telegram_webhook", "POST", "/webhooks/telegram", "text/plain", {401: UNAUTHORIZED}, accept_update
    ),
)
