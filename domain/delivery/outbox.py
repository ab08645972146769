"""What goes into the outbox, and the rules of its life: idempotency keys, retries, leases, dead letters."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.vocabulary import Channel, MessageCategory, MessageSource, MessageStatus


def idempotency_key(source: MessageSource, source_ref: str, customer_id: int | str, channel: Channel) -> str:
    """One key per (source, recipient, channel): the same campaign never reaches a customer twice on a channel."""
    return f"{source.value}:{source_ref}:{customer_id}:{channel.value}"


@dataclass(slots=True)
class OutboxEntry:
    """A message ready to be stored in the outbox (planned) or recorded as not sent (suppressed), with why.

    Treat it as a value: nothing changes an entry once built. It is not declared frozen because campaign
    planning builds one per recipient, and a frozen dataclass costs five times as much to construct.

    `payload` carries what the driver needs beyond the text: `html_body` for email, `whatsapp_template`
    (name, language, components) for WhatsApp templates, and `explanation`, the sentence behind the decision.
    """

    customer_id: int | None
    channel: Channel
    source: MessageSource
    source_ref: str
    category: MessageCategory
    to_address: str
    body: str
    status: MessageStatus = MessageStatus.PLANNED
    status_reason: str | None = None
    subject: str | None = None
    template_id: int | None = None
    campaign_id: int | None = None
    send_at: datetime | None = None
    segments: int | None = None
    encoding: str | None = None
    cost_micros: int | None = None
    currency: str | None = None
    payload: dict[str, object] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(
            self.source, self.source_ref, self.customer_id or self.to_address, self.channel
        )


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; a provider's Retry-After wins when it asks for longer."""

    max_attempts: int = 8
    base_delay: timedelta = timedelta(seconds=2)
    max_delay: timedelta = timedelta(minutes=30)
    lease: timedelta = timedelta(seconds=60)
    #: How long a message whose send outcome is unknown waits for a provider receipt before it is retried.
    in_doubt_grace: timedelta = timedelta(minutes=2)

    def next_attempt(
        self, now: datetime, attempts: int, retry_after: float | None, rng: random.Random
    ) -> datetime:
        ceiling = min(
            self.max_delay.total_seconds(), self.base_delay.total_seconds() * 2 ** max(attempts - 1, 0)
        )
        delay = rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return now + timedelta(seconds=delay)

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


@dataclass(frozen=True)
class ClaimedMessage:
    id: int
    customer_id: int | None
    channel: str
    provider: str
    to_address: str
    subject: str | None
    body: str
    payload: dict[str, Any] | None
    idempotency_key: str
    attempts: int
    campaign_id: int | None
    template_id: int | None
    #: When the message was planned: with its id, it names the row (PostgreSQL keeps the messages by month
    #: of this, and a statement that says it reads only that month).
    created_at: datetime | None = None
    #: "marketing" or "transactional" (domain.vocabulary.MessageCategory).
    category: str = "transactional"


@dataclass(frozen=True)
class Accepted:
    message_id: int
    provider_message_id: str
    status: MessageStatus
    at: datetime
    cost_micros: int | None = None


@dataclass(frozen=True)
class Rescheduled:
    """Try again at `at` (a retryable error, or an in-doubt send waiting for its receipt)."""

    message_id: int
    at: datetime
    reason: str
    error_code: str | None = None


@dataclass(frozen=True)
class Dead:
    message_id: int
    at: datetime
    reason: str
    error_code: str | None = None


@dataclass(frozen=True)
class Held:
    """Not sent: the message's campaign was paused or cancelled after the claim. It goes back to the
    outbox (cancelled with its campaign) and the claim's attempt is not counted: nothing was tried."""

    message_id: int
    at: datetime
    reason: str = "its campaign was paused or cancelled before it was sent"


Outcome = Accepted | Rescheduled | Dead | Held


@dataclass(frozen=True)
class ReceiptResult:
    applied: bool
    message_id: int | None
    status: str | None
    reason: str
