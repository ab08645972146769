"""The port every provider driver implements, and the values that cross it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from domain.transaction import Transaction
from domain.vocabulary import Channel, MessageStatus

if TYPE_CHECKING:
    from domain.delivery.outbox import ClaimedMessage, Outcome, ReceiptResult


@dataclass(frozen=True)
class WhatsAppTemplateCall:
    """An approved WhatsApp template to send instead of free-form text."""

    name: str
    language: str
    components: tuple[dict[str, object], ...] = ()


@dataclass(frozen=True)
class OutboundFile:
    """A file a message carries: a signed public link to it, its name and its checked type.

    `chat_id` and `sha256` name the kept file (chat_attachments) so a channel that carries the file itself
    (email's MIME part) is handed its bytes as `content` by the dispatcher; the link stays in the words."""

    url: str
    filename: str
    content_type: str
    chat_id: int | None = None
    sha256: str = ""
    content: bytes | None = field(default=None, repr=False, compare=False)

    def as_payload(self) -> dict[str, str | int]:
        payload: dict[str, str | int] = {
            "url": self.url,
            "filename": self.filename,
            "content_type": self.content_type,
        }
        if self.chat_id is not None and self.sha256:
            payload.update(chat_id=self.chat_id, sha256=self.sha256)
        return payload

    @staticmethod
    def from_payload(value: object) -> OutboundFile | None:
        if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in ("url", "filename")):
            return None
        chat_id, sha256 = value.get("chat_id"), value.get("sha256")
        return OutboundFile(
            str(value["url"]),
            str(value["filename"]),
            str(value.get("content_type") or ""),
            chat_id if isinstance(chat_id, int) else None,
            sha256 if isinstance(sha256, str) else "",
        )


@dataclass(frozen=True)
class Choice:
    """One answer a pick-one question offers: what comes back (`id`), what the person sees."""

    id: str
    title: str
    description: str = ""


@dataclass(frozen=True)
class Choices:
    """A pick-one question a channel that can shows as a list to tap (WhatsApp's interactive list); the
    message's words still ask it, so channels that cannot (and people who type) answer in words."""

    button: str
    options: tuple[Choice, ...]

    def as_payload(self) -> dict[str, object]:
        return {
            "button": self.button,
            "options": [{"id": o.id, "title": o.title, "description": o.description} for o in self.options],
        }

    @staticmethod
    def from_payload(value: object) -> Choices | None:
        if not isinstance(value, dict) or not isinstance(value.get("options"), list):
            return None
        options = tuple(
            Choice(str(o["id"]), str(o["title"]), str(o.get("description") or ""))
            for o in value["options"]
            if isinstance(o, dict) and "id" in o and "title" in o
        )
        return Choices(str(value.get("button") or ""), options) if options else None


@dataclass(frozen=True)
class OutboundMessage:
    """One message ready to leave through a provider.

    `message_id` is our row id; drivers echo it back to us through the provider wherever the
    provider allows (Twilio status-callback URL, WhatsApp `biz_opaque_callback_data`, the email
    Message-ID) so that a receipt can be matched even if we crashed before recording acceptance.
    """

    message_id: int
    idempotency_key: str
    channel: Channel
    to: str
    body: str
    subject: str | None = None
    html_body: str | None = None
    whatsapp_template: WhatsAppTemplateCall | None = None
    unsubscribe_url: str | None = None
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: A file sent with the words, by a public link the provider fetches (WhatsApp media by link).
    attachment: OutboundFile | None = None
    #: A pick-one question to show as a list where the channel can (WhatsApp); the words ask it anyway.
    choices: Choices | None = None


@dataclass(frozen=True)
class ProviderAcceptance:
    """The provider took the message; from here on it must never be sent again."""

    provider_message_id: str
    status: MessageStatus = MessageStatus.QUEUED
    cost_micros: int | None = None


class ProviderError(Exception):
    """A send the provider refused or that did not complete.

    `permanent` errors (Twilio 21610 opted out, WhatsApp 131047 window closed, a bad address)
    fail the message at once; others are retried with backoff, honouring `retry_after`.
    `maybe_accepted` is set when the outcome is unknown (timeout after the request was sent), so
    the outbox treats the message as in doubt instead of re-sending blindly. `channel_wide` says the
    whole channel must wait `retry_after` (a rate limit, refused credentials); otherwise only this
    message waits — one provider 500 must not pause every other send.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        permanent: bool = False,
        retry_after: float | None = None,
        maybe_accepted: bool = False,
        channel_wide: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent
        self.retry_after = retry_after
        self.maybe_accepted = maybe_accepted
        self.channel_wide = channel_wide


class MessageDriver(Protocol):
    """Sends messages on one channel through one provider.

    `receipts_name_our_id`: the provider's receipts carry our message id (Twilio's status-callback URL,
    WhatsApp's biz_opaque_callback_data), so a send we lost track of — a worker killed mid-call, a call
    that timed out after the request left — is confirmed by its receipt, and retried only if none comes.
    Without that (SMTP, Telegram) nothing can tell us whether it arrived, so it is never sent again: a
    second copy must not reach the customer. It ends failed, with that reason, for staff to follow up.
    """

    channel: Channel
    provider: str
    receipts_name_our_id: bool
    #: How long one call may take before it counts as in doubt.
    timeout_seconds: float

    async def send(self, message: OutboundMessage) -> ProviderAcceptance: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class DeliveryReceipt:
    """A provider's report of where a message we sent has got to."""

    provider: str
    provider_message_id: str
    status: MessageStatus
    occurred_at: datetime
    error_code: str | None = None
    error_detail: str | None = None
    our_message_id: int | None = None
    cost_micros: int | None = None


@dataclass(frozen=True)
class InboundMessage:
    """A message a customer sent us."""

    provider: str
    channel: Channel
    provider_message_id: str
    from_address: str
    to_address: str
    body: str
    received_at: datetime
    sender_name: str | None = None
    #: Sent by a machine, not a person (an auto-reply, a bounce, a mailing list): it makes no new customer.
    automated: bool = False
    #: An email's subject ("Rechnung Frage", without "Re:"): the conversation's, which replies answer under.
    subject: str | None = None
    #: The language the sender's app says they use (Telegram's `language_code`, a browser's "de-AT"), if any.
    sender_language: str | None = None


class OutboxPort(Protocol):
    """The outbox as the delivery use-cases see it (implemented by storage.outbox.SqlOutbox)."""

    async def claim_due(
        self,
        worker_id: str,
        now: datetime,
        limit: int,
        lease: timedelta,
        channels: Sequence[str] | None = None,
    ) -> list[ClaimedMessage]: ...

    async def release_expired_leases(
        self, now: datetime, grace: timedelta, confirmable: Sequence[str], not_repeated: str
    ) -> int:
        """Claims whose worker died: on `confirmable` channels back to planned after `grace` (a receipt may
        confirm the send first); on the others back to planned at once if their send never started (no hand-
        over noted), else ended with `not_repeated`, never sent again."""

    async def extend_claims(
        self,
        worker_id: str,
        message_ids: Sequence[int],
        until: datetime,
        created: Mapping[int, datetime] | None = None,
    ) -> list[int]:
        """Keep `worker_id`'s claim on these messages until `until`; returns the ids it still held.

        `created` (here and below) gives the claimed messages' creation times, as the claim returned them:
        the outbox then reads only their months (PostgreSQL partitions by it); without it, every month."""

    async def note_hand_over(
        self,
        worker_id: str,
        message_ids: Sequence[int],
        now: datetime,
        until: datetime,
        created: Mapping[int, datetime] | None = None,
    ) -> list[int]:
        """Notes that the provider calls for these messages start now, renewing their claims until `until`;
        returns the ids still claimed by `worker_id` (only those may be sent)."""

    async def campaigns_on_hold(self, campaign_ids: Iterable[int]) -> set[int]:
        """Which of these campaigns are paused or cancelled now (their claimed messages wait)."""

    async def record_outcomes(
        self,
        outcomes: Iterable[Outcome],
        worker_id: str | None = None,
        created: Mapping[int, datetime] | None = None,
    ) -> None:
        """Record what became of claimed messages; with `worker_id`, only claims still held by that worker
        are ended (a claim another worker took over after it ran out is theirs). Acceptances always count."""

    async def apply_receipt(self, receipt: DeliveryReceipt) -> ReceiptResult: ...


class DeliveryUnitOfWork(Transaction, Protocol):
    @property
    def outbox(self) -> OutboxPort: ...
