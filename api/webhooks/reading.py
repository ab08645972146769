"""Reads stored webhook bodies into domain values with the provider drivers' parsers (also used by replay)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from email.parser import BytesHeaderParser
from typing import Any
from urllib.parse import parse_qsl

from pydantic import SecretStr

from api.webhooks.links import read_telegram_start_payload
from bot.drivers.smtp_email import parse_bounce, parse_inbound_email
from bot.drivers.telegram import parse_telegram_update
from bot.drivers.twilio_sms import parse_twilio_inbound, parse_twilio_status
from bot.drivers.webhook_errors import MalformedWebhook
from bot.drivers.whatsapp_cloud import parse_whatsapp_webhook
from domain.conversations.model import CustomerMessage, WebhookContents, WebhookDelivery, body_digest
from domain.vocabulary import Provider

#: Inbox `kind` values, one per route.
TWILIO_STATUS = "status"
TWILIO_INBOUND = "inbound"
WHATSAPP_WEBHOOK = "webhook"
TELEGRAM_UPDATE = "update"
EMAIL_INBOUND = "email"

#: Content type of an email body kept base64-encoded because it was not UTF-8.
EMAIL_BASE64 = "message/rfc822; transfer=base64"


def form_params(body: str) -> dict[str, str]:
    return dict(parse_qsl(body, keep_blank_values=True))


def json_object(body: str | bytes, what: str) -> Mapping[str, Any]:
    """The body as a JSON object, or MalformedWebhook saying why not (never another exception)."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedWebhook(f"{what} body is not JSON: {error}") from error
    except RecursionError:
        # JSON nested thousands deep exhausts the parser; the body is kept, just not readable.
        raise MalformedWebhook(f"{what} body is JSON nested too deep to read") from None
    if not isinstance(value, Mapping):
        raise MalformedWebhook(f"{what} body is not a JSON object")
    return value


def email_delivery(raw: bytes) -> WebhookDelivery:
    """Keeps an email for the inbox, deduped by its Message-ID (or its content when it has none)."""
    message_id = str(BytesHeaderParser().parsebytes(raw).get("Message-ID") or "").strip()
    try:
        body, content_type = raw.decode("utf-8"), "message/rfc822"
    except UnicodeDecodeError:
        body, content_type = base64.b64encode(raw).decode(), EMAIL_BASE64
    return WebhookDelivery(
        Provider.SMTP.value, EMAIL_INBOUND, message_id or body_digest(raw), body, content_type
    )


def email_bytes(delivery: WebhookDelivery) -> bytes:
    if delivery.content_type == EMAIL_BASE64:
        return base64.b64decode(delivery.body)
    return delivery.body.encode("utf-8")


def telegram_sender(update: Mapping[str, Any]) -> int | None:
    """The Telegram user behind any kind of update (message, callback_query, edited_message, ...)."""
    for key, value in update.items():
        if key == "update_id" or not isinstance(value, Mapping):
            continue
        sender = value.get("from")
        if isinstance(sender, Mapping) and isinstance(sender.get("id"), int):
            return int(sender["id"])
    return None


class ProviderWebhookReader:
    """domain.conversations.ports.WebhookReader over the bot/drivers parsers."""

    def __init__(self, link_secret: SecretStr | str, *, telegram_bot_address: str = "bot") -> None:
        self._link_secret = link_secret
        self._bot_address = telegram_bot_address

    def read(self, delivery: WebhookDelivery) -> WebhookContents:
        key = (delivery.provider, delivery.kind)
        if key == (Provider.TWILIO.value, TWILIO_STATUS):
            return WebhookContents(receipts=(parse_twilio_status(form_params(delivery.body)),))
        if key == (Provider.TWILIO.value, TWILIO_INBOUND):
            return WebhookContents(
                messages=(CustomerMessage(parse_twilio_inbound(form_params(delivery.body))),)
            )
        if key == (Provider.WHATSAPP_CLOUD.value, WHATSAPP_WEBHOOK):
            inbound, receipts = parse_whatsapp_webhook(json_object(delivery.body, "whatsapp webhook"))
            return WebhookContents(tuple(receipts), tuple(CustomerMessage(m) for m in inbound))
        if key == (Provider.TELEGRAM.value, TELEGRAM_UPDATE):
            return self._telegram(json_object(delivery.body, "telegram update"))
        if key == (Provider.SMTP.value, EMAIL_INBOUND):
            return self._email(email_bytes(delivery))
        raise MalformedWebhook(f"no reader for {delivery.provider}/{delivery.kind}")

    def _telegram(self, update: Mapping[str, Any]) -> WebhookContents:
        if not isinstance(update.get("update_id"), int):
            raise MalformedWebhook("telegram update has no update_id")
        sender = telegram_sender(update)
        message = parse_telegram_update(update, bot_address=self._bot_address)
        if message is None:
            return WebhookContents(sender_user_id=sender)
        words = message.body.split()
        link = None
        if len(words) == 2 and words[0].split("@", 1)[0].casefold() == "/start":
            link = read_telegram_start_payload(self._link_secret, words[1])
        return WebhookContents(messages=(CustomerMessage(message, link),), sender_user_id=sender)

    def _email(self, raw: bytes) -> WebhookContents:
        bounce = parse_bounce(raw)
        if bounce is not None:
            return WebhookContents(receipts=(bounce,))
        if BytesHeaderParser().parsebytes(raw).get_content_type() == "multipart/report":
            return WebhookContents()  # a delay or success report: nothing final to record
        message = parse_inbound_email(raw)
        if not message.from_address:
            raise MalformedWebhook("inbound email has no From address")
        return WebhookContents(messages=(CustomerMessage(message),))
