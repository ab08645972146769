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
#: What our own sending adds before a server's refusal ("550: smtp 550: 5.1.1 …").
_OUR_PREFIX = re.compile(r"(?:[245]\d\d:\s*)?(?:smtp:?\s*)?(?:[245]\d\d:\s*)?", re.I)
#: A multi-line reply flattened into one: each line's own "550-5.1.1" in the middle of the words.
_LINE_CODES = re.compile(r"\s[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}(?=\s)")
#: The server's own trace id at the end of its reply ("d2si.123 - gsmtp").
_TRACE = re.compile(r"\s+\S+\s+-\s+gsmtp$", re.I)


#: Why a message was held back, by the send decision's code (domain/consent/rules.py), as one message's reason.
HELD_BACK_WORDS = {
    "no_address": "no address on this channel",
    "opted_out": "the customer opted out",
    "no_consent": "needs the customer's opt-in",
    "whatsapp_window_closed_needs_template": "outside WhatsApp's 24-hour window, and not an approved template",
    "frequency_cap_channel": "the business's limit of marketing on this channel was reached",
    "frequency_cap_campaign_type": "the business's limit of campaigns of this kind was reached",
    "business_no_marketing_on_channel": "the business sends no marketing on this channel (its limit is 0)",
    "business_no_campaign_type": "the business sends no campaigns of this kind (its limit is 0)",
    "customer_marketing_limit": "the customer's own marketing limit was reached",
    "quiet_hours": "waiting for the customer's quiet hours to end",
    "no_template": "the template has no variant for the customer's language or this channel",
    "template_error": "the template could not be filled in",
}


def failure_words(reason: str) -> str:
    """Why a message failed, words first: a mail server's "550 5.1.1 Mailbox unavailable" reads "Mailbox
    unavailable (5.1.1)" however it reached us (a bounce report, or our own "550: smtp 550: …" when the server
    refused it at once), so that one failure counts as one reason; other reasons read with spaces for
    underscores ("no_consent" is "no consent")."""
    text = reason.strip()
    if text in HELD_BACK_WORDS:
        return HELD_BACK_WORDS[text]
    found = _MAIL_SERVER_REASON.fullmatch(
        _OUR_PREFIX.sub("", text, count=1)
    ) or _MAIL_SERVER_REASON.fullmatch(text)
    if found is None:
        return reason.replace("_", " ")
    words = _TRACE.sub("", " ".join(found["words"].split()))
    words = _LINE_CODES.sub("", words).strip()
    words = re.sub(r"^<[^>]*>:?\s*", "", words)  # the address refused: the message's own page names it
    return f"{words[:1].upper()}{words[1:]} ({found['status']})"
