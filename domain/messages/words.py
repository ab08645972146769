"""A message's stored values as staff read them on the dashboard: its status, direction, provider, source
and category. The stored values stay what the API, the exports and the filters' addresses use."""

from __future__ import annotations

import re

from domain.vocabulary import Direction, MessageCategory, MessageSource, MessageStatus, Provider

#: Channels as staff read them, wherever a page, a thread or a bot names one.
CHAT_CHANNEL_WORDS = {
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "email": "email",
    "telegram": "Telegram",
    "chat": "website chat",
}
STATUS_WORDS: dict[str, str] = {
    MessageStatus.PLANNED: "planned",
    MessageStatus.SENDING: "being sent",
    MessageStatus.QUEUED: "with the provider",
    MessageStatus.SENT: "sent",
    MessageStatus.DELIVERED: "delivered",
    MessageStatus.READ: "read",
    MessageStatus.FAILED: "failed",
    MessageStatus.UNDELIVERED: "not delivered",
    MessageStatus.DEAD: "given up",
    MessageStatus.SUPPRESSED: "held back",
    MessageStatus.CANCELLED: "cancelled",
    MessageStatus.RECEIVED: "received",
}
DIRECTION_WORDS: dict[str, str] = {
    Direction.OUTBOUND: "to the customer",
    Direction.INBOUND: "from the customer",
}
PROVIDER_WORDS: dict[str, str] = {
    Provider.TWILIO: "Twilio",
    Provider.SMTP: "the mail server",
    Provider.WHATSAPP_CLOUD: "WhatsApp Cloud API",
    Provider.TELEGRAM: "Telegram Bot API",
    Provider.INTERNAL: "Switchboard itself",
    # Webhooks are told apart by who sends them.
    "whatsapp": "WhatsApp Cloud API",
    "slack": "Slack",
}
SOURCE_WORDS: dict[str, str] = {
    MessageSource.MANUAL: "sent by staff",
    MessageSource.CAMPAIGN: "a campaign",
    MessageSource.NOTIFICATION: "an automated notification",
    MessageSource.REPLY: "a reply",
    MessageSource.CHAT: "a conversation",
    MessageSource.SYSTEM: "Switchboard itself",
}
CATEGORY_WORDS: dict[str, str] = {
    MessageCategory.MARKETING: "marketing",
    MessageCategory.TRANSACTIONAL: "service (reminders, confirmations)",
    MessageCategory.CONVERSATIONAL: "conversation",
}


def _said(words: dict[str, str], value: str) -> str:
    return words.get(value, value.replace("_", " "))


def status_words(status: str) -> str:
    return _said(STATUS_WORDS, status)


def direction_words(direction: str) -> str:
    return _said(DIRECTION_WORDS, direction)


def channel_words(channel: str) -> str:
    """A channel as staff read it ("WhatsApp", "website chat")."""
    return CHAT_CHANNEL_WORDS.get(channel, channel.replace("_", " "))


def provider_words(provider: str) -> str:
    return _said(PROVIDER_WORDS, provider)


def source_words(source: str) -> str:
    return _said(SOURCE_WORDS, source)


def category_words(category: str) -> str:
    return _said(CATEGORY_WORDS, category)


#: A mail server's reason as it writes it: an SMTP reply code, an enhanced status code (RFC 3463), then words.
_MAIL_SERVER_REASON = re.compile(
    r"(?:[245]\d\d[ -])?(?P<status>[245]\.\d{1,3}\.\d{1,3})\s+(?P<words>\S.*)", re.S
)


def failure_words(reason: str) -> str:
    """Why a message failed, words first: a mail server's "550 5.1.1 Mailbox unavailable" reads "Mailbox
    unavailable (5.1.1)", so that reasons differing only in the reply code count as one; other reasons read
    with spaces for underscores ("no_consent" is "no consent")."""
    found = _MAIL_SERVER_REASON.fullmatch(reason.strip())
    if found is None:
        return reason.replace("_", " ")
    words = " ".join(found["words"].split())
    return f"{words[:1].upper()}{words[1:]} ({found['status']})"
