"""The values inbound handling works with: a stored webhook, what it says, and what handling it did."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

from domain.consent.keywords import KeywordAction
from domain.conversations.attachments import MediaReference
from domain.delivery.ports import DeliveryReceipt, InboundMessage
from domain.vocabulary import Channel

#: A customer's message counts as the reply to our latest message on the channel within this time.
REPLY_WINDOW = timedelta(days=7)

#: Channels whose keyword confirmations go out through the outbox; SMS answers in the webhook response.
OUTBOX_REPLY_CHANNELS: frozenset[Channel] = frozenset({Channel.WHATSAPP, Channel.TELEGRAM})

#: The ledger `source` of a consent keyword, per channel.
KEYWORD_SOURCE: dict[Channel, str] = {
    Channel.SMS: "sms_keyword",
    Channel.WHATSAPP: "whatsapp_keyword",
    Channel.TELEGRAM: "telegram_command",
    Channel.EMAIL: "email_keyword",
}


@dataclass(frozen=True)
class WebhookDelivery:
    """One verified webhook as it is kept in the inbox: enough to apply it again later."""

    provider: str
    kind: str
    dedupe_key: str
    body: str
    content_type: str = "application/json"

    def __post_init__(self) -> None:
        # PostgreSQL text cannot hold NUL; a signed body containing one is garbage anyway.
        if "\x00" in self.body:
            object.__setattr__(self, "body", self.body.replace("\x00", "\ufffd"))


def body_digest(raw: bytes) -> str:
    """A dedupe key for providers that retry the identical body (Meta) or send no id of their own."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class StoredWebhook:
    """A webhook row read back from the inbox, for replay."""

    id: int
    delivery: WebhookDelivery
    attempts: int


@dataclass(frozen=True)
class CustomerMessage:
    """An inbound message plus what the provider told us about who sent it.

    `link_customer_id` is set when a verified deep link (Telegram `/start <payload>`) names the customer.
    `media` names the files that came with it.
    """

    message: InboundMessage
    link_customer_id: int | None = None
    #: Files the customer sent with it (photos, documents), fetched and checked before it is applied.
    media: tuple[MediaReference, ...] = ()


@dataclass(frozen=True)
class MailBounce:
    """Our own mail to staff that did not arrive (a scheduled report, an alert), not a customer message:
    `kind` is the mail's kind ("report"), `message_id` the original's Message-ID without its <>."""

    kind: str
    message_id: str
    error: str


@dataclass(frozen=True)
class WebhookContents:
    """What a webhook says, in domain terms; `sender_user_id` is the Telegram user who wrote."""

    receipts: tuple[DeliveryReceipt, ...] = ()
    messages: tuple[CustomerMessage, ...] = ()
    sender_user_id: int | None = None
    mail_bounces: tuple[MailBounce, ...] = ()


@dataclass(frozen=True)
class InboundResult:
    """What handling one customer message did."""

    communication_id: int | None  # None: a duplicate of a message already recorded
    customer_id: int | None
    keyword: KeywordAction | None = None
    reply: str | None = None


@dataclass
class WebhookOutcome:
    """What receiving one webhook did; `staff_update` means it belongs to the staff bot."""

    duplicate: bool = False
    failed: bool = False
    error: str | None = None
    receipts_applied: int = 0
    inbound: list[InboundResult] = field(default_factory=list)
    staff_update: bool = False


class UnknownMessage(LookupError):
    """A receipt for a message we have no record of (kept as a failed webhook, for replay)."""


@dataclass(frozen=True)
class ChatReplyTarget:
    """The conversation a staff reply answers: whose it is, where it came from, and what it was about."""

    chat_id: int
    customer_id: int
    channel: str
    subject: str | None
    customer_name: str | None
    #: The customer was erased at their request: nothing more is written in the conversation.
    customer_erased: bool = False
    #: The Message-ID of the customer's latest email in it: an email reply threads under it.
    answers_email: str | None = None


#: Said when a reply or a note is asked for in the conversation of a customer erased at their request.
ERASED_CHAT = "This customer was erased at their request: nothing more is written in their conversation."


@dataclass(frozen=True)
class ReplyRoute:
    """Where a reply in this conversation goes, said to the agent before they send it."""

    channel: Channel | None  # None: no channel can take a reply now
    note: str
    can_send: bool


class ChatNotFound(LookupError):
    """There is no such conversation."""
