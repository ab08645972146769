"""Everything the provider sandbox remembers: accepted messages, counters, opt-outs and queues."""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from api.sandbox.config import SandboxConfig
from api.sandbox.slack_workspace import SlackWorkspace
from api.sandbox.whatsapp_templates import ApprovedTemplate

#: Faults the sandbox can inject into a provider send.
FAULTS = ("429", "500", "503", "timeout")

COUNTERS = (
    "requests",
    "accepted",
    "duplicates_suppressed",
    "rate_limited_429s",
    "injected_errors",
    "injected_429s",
    "webhooks_sent",
    "webhook_failures",
    #: Webhooks thrown away because the queue was full (also counted in webhook_failures).
    "webhooks_dropped",
    #: Message records deleted at Switchboard's request (a customer's erasure).
    "deleted",
)


def now_utc() -> datetime:
    return datetime.now(UTC)


def address_key(address: str) -> str:
    """One spelling per customer address: digits for phone numbers, lower case for email."""
    value = address.strip()
    if "@" in value:
        return value.lower()
    if value.startswith("whatsapp:"):
        value = value[len("whatsapp:") :]
    digits = re.sub(r"[^\d-]", "", value)
    return digits or value


@dataclass
class SandboxMessage:
    """One message the sandbox accepted from Switchboard, or one a pretend customer sent."""

    provider: str
    provider_message_id: str
    to: str
    sender: str
    body: str
    status: str
    direction: str = "outbound"
    idempotency_key: str | None = None
    our_message_id: int | None = None
    error_code: str | None = None
    template: str | None = None
    callback_url: str | None = None
    created_at: datetime = field(default_factory=now_utc)
    history: list[dict[str, str | None]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    #: Its record was deleted at our request: nothing more happens to it.
    deleted: bool = False

    def move_to(self, status: str, error_code: str | None = None) -> None:
        self.status = status
        self.error_code = error_code or self.error_code
        self.history.append({"status": status, "at": now_utc().isoformat(), "error_code": error_code})

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        del data["deleted"]  # never listed once deleted
        return data


@dataclass
class StoredEmail:
    """A message the sandbox SMTP server received."""

    message_id: str
    mail_from: str
    rcpt_tos: list[str]
    subject: str
    text: str
    html: str | None
    headers: dict[str, str]
    raw: bytes
    received_at: datetime = field(default_factory=now_utc)
    #: What the sandbox reported back to the envelope sender, as a relay would: "delivered", "bounced (5.1.1)",
    #: or "" when no report was asked for (or webhooks are off).
    report: str = ""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["raw"] = self.raw.decode("utf-8", "replace")
        data["received_at"] = self.received_at.isoformat()
        return data


class TokenBucket:
    """A provider's throughput limit: `rate` sends per second with bursts up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(max(1, burst))
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def take(self) -> bool:
        moment = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (moment - self.updated) * self.rate)
        self.updated = moment
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class TelegramWebhook:
    url: str
    secret_token: str | None


class SandboxState:
    """The sandbox's memory, shared by the HTTP app and the SMTP thread (hence the lock)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.random = random.Random(config.seed)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing = asyncio.Event()
        self.telegram_update_arrived = asyncio.Event()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.messages: list[SandboxMessage] = []
            self.by_idempotency_key: dict[tuple[str, str], SandboxMessage] = {}
            self.requests_per_key: Counter[tuple[str, str]] = Counter()
            self.stats: dict[str, Counter[str]] = {}
            self.opted_out: set[str] = set()
            self.whatsapp_last_inbound: dict[str, float] = {}
            #: (name, language) -> template, as Meta's register holds them for this account.
            self.whatsapp_templates: dict[tuple[str, str], ApprovedTemplate] = {
                (template.name, template.language): template for template in self.config.whatsapp_templates
            }
            self.telegram_webhook: TelegramWebhook | None = None
            self.telegram_updates: list[dict[str, Any]] = []
            self.telegram_next_update_id = 100_000_001
            self.telegram_next_message_id: Counter[int] = Counter()
            self.telegram_sent: dict[tuple[int, int], dict[str, Any]] = {}
            #: What pretend people wrote to the bot, by (chat, message id): a bot message may reply to one.
            self.telegram_received: dict[tuple[int, int], dict[str, Any]] = {}
            #: file_id -> (kind, what a message carries for it), so a file can be sent again by its id.
            self.telegram_files: dict[str, tuple[str, Any]] = {}
            #: Callback query ids a pretend customer's button press made, not yet answered.
            self.telegram_open_callbacks: set[str] = set()
            self.telegram_calls: list[dict[str, Any]] = []
            #: Files pretend customers sent (api/sandbox/media.py), by media id, file_id or media sid.
            self.media: dict[str, Any] = {}
            self.emails: list[StoredEmail] = []
            self.email_copies: Counter[str] = Counter()
            self.webhook_log: deque[dict[str, Any]] = deque(maxlen=500)
            self.forced_faults: dict[str, deque[str]] = {}
            self.rate_buckets: dict[str, TokenBucket] = {}
            self.slack = SlackWorkspace(self.config)

    # --- counters -------------------------------------------------------------------------
    def count(self, counter: str, provider: str, amount: int = 1) -> None:
        with self.lock:
            self.stats.setdefault(provider, Counter())[counter] += amount

    def totals(self) -> dict[str, int]:
        with self.lock:
            return {name: sum(per.get(name, 0) for per in self.stats.values()) for name in COUNTERS}

    def stats_json(self) -> dict[str, Any]:
        with self.lock:
            by_provider = {p: {n: per.get(n, 0) for n in COUNTERS} for p, per in self.stats.items()}
        return {**self.totals(), "by_provider": by_provider}

    # --- customers ------------------------------------------------------------------------
    def opt_out(self, address: str) -> None:
        with self.lock:
            self.opted_out.add(address_key(address))

    def opt_in(self, address: str) -> None:
        with self.lock:
            self.opted_out.discard(address_key(address))

    def is_opted_out(self, address: str) -> bool:
        return address_key(address) in self.opted_out

    def note_whatsapp_inbound(self, wa_id: str, at: float | None = None) -> None:
        self.whatsapp_last_inbound[address_key(wa_id)] = time.time() if at is None else at

    def whatsapp_window_open(self, wa_id: str) -> bool:
        last = self.whatsapp_last_inbound.get(address_key(wa_id))
        return last is not None and time.time() - last < 24 * 3600

    # --- chaos ----------------------------------------------------------------------------
    def force_faults(self, provider: str, *faults: str) -> None:
        """Make the next sends to `provider` fail in this order, whatever the configured rates."""
        unknown = [fault for fault in faults if fault not in FAULTS]
        if unknown:
            raise ValueError(f"unknown faults {unknown}; choose from {FAULTS}")
        with self.lock:
            self.forced_faults.setdefault(provider, deque()).extend(faults)

    def draw_fault(self, provider: str) -> str | None:
        with self.lock:
            forced = self.forced_faults.get(provider)
            if forced:
                return forced.popleft()
            chaos = self.config.chaos
            for fault, rate in (
                ("429", chaos.rate_429),
                ("500", chaos.rate_500),
                ("503", chaos.rate_503),
                ("timeout", chaos.rate_timeout),
            ):
                if rate > 0 and self.random.random() < rate:
                    return fault
        return None

    def take_rate_token(self, provider: str) -> bool:
        limit = self.config.rate_limit_per_second
        if limit is None:
            return True
        with self.lock:
            bucket = self.rate_buckets.get(provider)
            if bucket is None:
                bucket = self.rate_buckets[provider] = TokenBucket(limit, self.config.rate_limit_burst)
            return bucket.take()

    def should_fail(self) -> bool:
        with self.lock:
            return self.config.failure_rate > 0 and self.random.random() < self.config.failure_rate

    def latency(self) -> float:
        low, high = self.config.status_latency
        with self.lock:
            return self.random.uniform(low, high)

    async def hang(self, seconds: float) -> None:
        """Hold an answer back, but let go at once when the sandbox shuts down."""
        try:
            await asyncio.wait_for(self.closing.wait(), timeout=seconds)
        except TimeoutError:
            pass

    # --- messages -------------------------------------------------------------------------
    def previous_send(self, provider: str, idempotency_key: str | None) -> SandboxMessage | None:
        """Count a send attempt under its key and return the message an earlier attempt made."""
        self.count("requests", provider)
        if not idempotency_key:
            return None
        with self.lock:
            self.requests_per_key[(provider, idempotency_key)] += 1
            existing = self.by_idempotency_key.get((provider, idempotency_key))
        if not self.config.honour_idempotency_keys:
            return None  # like Twilio and Meta: every request is a new message
        if existing is not None:
            self.count("duplicates_suppressed", provider)
        return existing

    def accept(self, message: SandboxMessage) -> SandboxMessage:
        with self.lock:
            self.messages.append(message)
            if message.idempotency_key and message.direction == "outbound":
                self.by_idempotency_key[(message.provider, message.idempotency_key)] = message
        if message.direction == "outbound":
            self.count("accepted", message.provider)
        message.history.append({"status": message.status, "at": now_utc().isoformat(), "error_code": None})
        return message

    def find(self, provider: str, provider_message_id: str) -> SandboxMessage | None:
        with self.lock:
            for message in reversed(self.messages):
                if message.provider == provider and message.provider_message_id == provider_message_id:
                    return message
        return None

    def forget(self, message: SandboxMessage) -> None:
        """The provider deleted its record of `message` at our request (Twilio's DELETE on a Message)."""
        with self.lock:
            message.deleted = True
            self.messages = [m for m in self.messages if m is not message]
            if message.idempotency_key:
                key = (message.provider, message.idempotency_key)
                if self.by_idempotency_key.get(key) is message:
                    del self.by_idempotency_key[key]
        self.count("deleted", message.provider)

    def messages_json(self, provider: str | None = None) -> dict[str, Any]:
        with self.lock:
            chosen = [m for m in self.messages if provider is None or m.provider == provider]
            per_key = Counter(
                m.idempotency_key for m in chosen if m.idempotency_key and m.direction == "outbound"
            )
            requests = {
                k: n for (p, k), n in self.requests_per_key.items() if provider is None or p == provider
            }
            per_recipient = Counter(m.to for m in chosen if m.direction == "outbound")
            return {
                "messages": [m.as_json() for m in chosen],
                "accepted_per_idempotency_key": dict(per_key),
                "requests_per_idempotency_key": requests,
                "accepted_per_recipient": dict(per_recipient),
            }

    # --- email ----------------------------------------------------------------------------
    def store_email(self, email: StoredEmail) -> bool:
        """Keep a received email; a second copy of a Message-ID is counted, not stored again."""
        with self.lock:
            self.email_copies[email.message_id] += 1
            if self.email_copies[email.message_id] > 1:
                duplicate = True
            else:
                self.emails.append(email)
                duplicate = False
        self.count("requests", "smtp")
        self.count("duplicates_suppressed" if duplicate else "accepted", "smtp")
        return not duplicate

    def emails_json(self) -> dict[str, Any]:
        with self.lock:
            return {
                "emails": [email.as_json() for email in self.emails],
                "copies_per_message_id": dict(self.email_copies),
            }

    # --- telegram -------------------------------------------------------------------------
    def queue_telegram_update(self, update_body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            update = {"update_id": self.telegram_next_update_id, **update_body}
            self.telegram_next_update_id += 1
            self.telegram_updates.append(update)
        self.telegram_update_arrived.set()
        return update

    def next_telegram_message_id(self, chat_id: int) -> int:
        with self.lock:
            self.telegram_next_message_id[chat_id] += 1
            return self.telegram_next_message_id[chat_id]
