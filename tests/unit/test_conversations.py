"""Inbound handling with fakes: keywords, replies, duplicates, and the inbox's failure and replay paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import pytest

from domain.consent.keywords import KeywordAction
from domain.consent.ledger import ConsentChange, ConsentRecorded, record_consent
from domain.consent.model import ChannelConsent
from domain.conversations.attachments import MediaReference
from domain.conversations.model import (
    CustomerMessage,
    StoredWebhook,
    WebhookContents,
    WebhookDelivery,
)
from domain.conversations.newcomers import Newcomer, newcomer
from domain.conversations.use_cases import (
    InboundPolicy,
    keyword_word,
    receive_webhook,
    replay_failed_webhooks,
)
from domain.delivery.outbox import OutboxEntry, ReceiptResult
from domain.delivery.ports import DeliveryReceipt, InboundMessage
from domain.vocabulary import Channel, ConsentStatus, MessageStatus

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
POLICY = InboundPolicy("Northwind")


@dataclass
class World:
    """The state the fakes share, committed or not."""

    inbox: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, int] = field(default_factory=lambda: {"+1555": 7})
    staff_telegram: set[int] = field(default_factory=set)
    messages: dict[str, int] = field(default_factory=dict)
    chats: list[tuple[int, str, str]] = field(default_factory=list)
    notes: list[tuple[int, str, str, str]] = field(default_factory=list)
    replied: list[int] = field(default_factory=list)
    queued: list[OutboxEntry] = field(default_factory=list)
    ledger: list[ConsentChange] = field(default_factory=list)
    receipts: list[DeliveryReceipt] = field(default_factory=list)
    known_messages: set[str] = field(default_factory=lambda: {"SM1"})
    newcomers: list[Newcomer] = field(default_factory=list)
    commits: int = 0


class RecordedAudit:
    def __init__(self) -> None:
        self.entries: list[Any] = []

    def record(self, entry: Any) -> None:
        self.entries.append(entry)


class NoSurveys:
    """No conversation of the fakes' customers has a survey out."""

    async def open_survey(self, customer_id: int, channel: Channel, since: datetime) -> None:
        return None


class FakeUow:
    """Copies the world on enter and writes it back on commit, so a rollback really forgets."""

    def __init__(self, world: World) -> None:
        self.world = world

    async def __aenter__(self) -> Self:
        import copy

        self.draft = copy.deepcopy(self.world)
        self.inbox = self.conversations = self.consent = self.outbox = self
        self.audit = RecordedAudit()
        self.csat = NoSurveys()  # CSAT answers are tested in test_csat.py
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass

    async def commit(self) -> None:
        self.draft.commits += 1
        self.world.__dict__.update(self.draft.__dict__)

    # inbox
    async def add(self, delivery: WebhookDelivery, at: datetime) -> int | None:
        key = (delivery.provider, delivery.dedupe_key)
        if key in self.draft.inbox:
            return None
        self.draft.inbox[key] = {"id": len(self.draft.inbox) + 1, "status": "received", "delivery": delivery}
        return int(self.draft.inbox[key]["id"])

    async def seen(self, delivery: WebhookDelivery) -> bool:
        return (delivery.provider, delivery.dedupe_key) in self.draft.inbox

    def _row(self, inbox_id: int) -> dict[str, Any]:
        return next(r for r in self.draft.inbox.values() if r["id"] == inbox_id)

    async def mark_applied(self, inbox_id: int, at: datetime) -> None:
        self._row(inbox_id)["status"] = "applied"

    async def record_failure(self, delivery: WebhookDelivery, error: str, at: datetime) -> None:
        key = (delivery.provider, delivery.dedupe_key)
        row = self.draft.inbox.setdefault(key, {"id": len(self.draft.inbox) + 1, "delivery": delivery})
        row.update(status="failed", error=error)

    async def failed(self, limit: int) -> list[StoredWebhook]:
        return [
            StoredWebhook(r["id"], r["delivery"], 1)
            for r in self.draft.inbox.values()
            if r["status"] == "failed"
        ]

    async def claim_for_replay(self, inbox_id: int) -> bool:
        row = self._row(inbox_id)
        if row["status"] != "failed":
            return False
        row["status"] = "received"
        return True

    # conversations
    async def find_customer(self, channel: Channel, address: str) -> int | None:
        return self.draft.customers.get(address)

    async def customer_language(self, customer_id: int) -> str | None:
        return None

    async def add_newcomer(self, newcomer: Newcomer, at: datetime) -> int:
        self.draft.newcomers.append(newcomer)
        customer_id = 100 + len(self.draft.newcomers)
        address = newcomer.phone_e164 or newcomer.email or str(newcomer.telegram_chat_id)
        self.draft.customers[address] = customer_id
        return customer_id

    async def link_telegram_chat(self, customer_id: int, chat_id: str) -> int | None:
        self.draft.customers[chat_id] = customer_id
        return customer_id

    async def is_staff_telegram_user(self, user_id: int) -> bool:
        return user_id in self.draft.staff_telegram

    async def latest_outbound(self, customer_id: int, channel: Channel, since: datetime) -> int | None:
        return 99

    async def record_inbound(
        self, message: InboundMessage, customer_id: int | None, replied_to: int | None
    ) -> int | None:
        if message.provider_message_id in self.draft.messages:
            return None
        self.draft.messages[message.provider_message_id] = len(self.draft.messages) + 1
        return self.draft.messages[message.provider_message_id]

    async def append_to_chat(
        self,
        customer_id: int,
        channel: Channel,
        communication_id: int,
        body: str,
        at: datetime,
        subject: str | None = None,
    ) -> int:
        self.draft.chats.append((customer_id, channel.value, body))
        return 1

    async def attach_files(self, chat_id: int, communication_id: int, files: Any, at: datetime) -> None:
        pass  # kept files are tested in test_chat_attachment_intake.py and the integration tests

    async def chat_assignee(self, chat_id: int) -> int | None:
        return 99  # the fake's conversation is already someone's: assignment is tested in test_desk.py

    async def agent_loads(self) -> list[Any]:
        return []

    async def chat_team(self, chat_id: int) -> str | None:
        return None

    async def assign(self, chat_id: int, staff_id: int | None) -> None:
        raise AssertionError("an assigned conversation is not assigned again")

    async def note_in_open_chat(
        self, customer_id: int, channel: Channel, communication_id: int, body: str, note: str, at: datetime
    ) -> int | None:
        self.draft.notes.append((customer_id, channel.value, body, note))
        return None

    async def mark_replied(self, communication_id: int, at: datetime) -> bool:
        self.draft.replied.append(communication_id)
        return True

    async def enqueue(self, entry: OutboxEntry, at: datetime) -> int | None:
        self.draft.queued.append(entry)
        return len(self.draft.queued)

    # consent
    async def record(self, change: ConsentChange) -> ConsentRecorded:
        previous = next((c.status for c in reversed(self.draft.ledger) if c.channel == change.channel), None)
        self.draft.ledger.append(change)
        return ConsentRecorded(len(self.draft.ledger), change.status, previous)

    async def current(self, customer_id: int, channel: Channel) -> ChannelConsent:
        statuses = [c.status for c in self.draft.ledger if c.channel == channel]
        return ChannelConsent(statuses[-1] if statuses else None)

    # outbox
    async def apply_receipt(self, receipt: DeliveryReceipt) -> ReceiptResult:
        if receipt.provider_message_id not in self.draft.known_messages:
            return ReceiptResult(False, None, None, "no message with this id")
        self.draft.receipts.append(receipt)
        return ReceiptResult(True, 1, receipt.status.value, "applied")


@dataclass
class FakeReader:
    contents: dict[str, WebhookContents]

    def read(self, delivery: WebhookDelivery) -> WebhookContents:
        if delivery.body not in self.contents:
            raise ValueError(f"cannot read {delivery.body!r}")
        return self.contents[delivery.body]


def inbound(
    body: str, *, channel: Channel = Channel.SMS, sender: str = "+1555", pid: str = "IN1"
) -> WebhookContents:
    message = InboundMessage("twilio", channel, pid, sender, "+1000", body, NOW)
    return WebhookContents(messages=(CustomerMessage(message),))


def delivery(body: str, key: str = "k1") -> WebhookDelivery:
    return WebhookDelivery("twilio", "inbound", key, body)


async def receive(world: World, reader: FakeReader, body: str, key: str = "k1") -> Any:
    return await receive_webhook(lambda: FakeUow(world), delivery(body, key), reader, POLICY, lambda: NOW)


async def test_a_reply_is_recorded_in_the_chat_and_marks_ours_replied() -> None:
    world = World()
    outcome = await receive(world, FakeReader({"hi": inbound("See you")}), "hi")
    assert not outcome.failed and outcome.inbound[0].customer_id == 7
    assert world.chats == [(7, "sms", "See you")] and world.replied == [99]
    assert world.ledger == [] and world.inbox[("twilio", "k1")]["status"] == "applied"


async def test_stop_records_an_opt_out_and_does_not_count_as_a_reply() -> None:
    world = World()
    outcome = await receive(world, FakeReader({"stop": inbound("stop!")}), "stop")
    assert outcome.inbound[0].keyword is KeywordAction.OPT_OUT
    [change] = world.ledger
    assert (change.status, change.source, change.detail) == (ConsentStatus.OPTED_OUT, "sms_keyword", "STOP")
    assert world.replied == []
    assert world.queued == []  # SMS confirms in the TwiML answer instead
    # No agent work: no chat is opened; an open one only gets the turn and a note of what changed.
    assert world.chats == []
    [(customer, channel, body, note)] = world.notes
    assert (customer, channel, body) == (7, "sms", "stop!") and "opted out of SMS" in note


async def test_whatsapp_keywords_queue_their_confirmation() -> None:
    world = World(customers={"1555": 7})
    reader = FakeReader({"w": inbound("START", channel=Channel.WHATSAPP, sender="1555")})
    await receive(world, reader, "w")
    [entry] = world.queued
    assert (entry.channel, entry.to_address, entry.customer_id) == (Channel.WHATSAPP, "1555", 7)
    assert "re-subscribed" in entry.body and entry.idempotency_key.startswith("system:keyword:IN1")
    assert world.ledger[0].status is ConsentStatus.OPTED_IN


async def test_an_unknown_sender_is_recorded_but_gets_no_consent_row() -> None:
    world = World()
    await receive(world, FakeReader({"s": inbound("STOP", sender="+1999")}), "s")
    assert world.messages == {"IN1": 1} and world.ledger == [] and world.chats == []


async def test_a_first_message_from_an_unknown_number_makes_a_customer_and_opens_a_chat() -> None:
    world = World()
    reader = FakeReader({"hi": inbound("Do you take new patients?", sender="+4915112345678")})
    outcome = await receive(world, reader, "hi")
    [made] = world.newcomers
    assert (made.phone_e164, made.name, made.tag) == (
        "+4915112345678",
        "SMS contact …5678",
        "first-contact:sms",
    )
    assert outcome.inbound[0].customer_id == 101
    assert world.chats == [(101, "sms", "Do you take new patients?")] and world.ledger == []
    # Their next message finds them: one customer, one conversation.
    await receive(
        world, FakeReader({"again": inbound("Hello?", sender="+4915112345678", pid="IN2")}), "again", "k2"
    )
    assert len(world.newcomers) == 1 and [c[0] for c in world.chats] == [101, 101]


async def test_a_newcomer_is_not_made_when_turned_off_or_for_a_keyword_or_short_code() -> None:
    off = World()
    reader = FakeReader({"hi": inbound("hello", sender="+4915112345678")})
    await receive_webhook(
        lambda: FakeUow(off),
        delivery("hi"),
        reader,
        InboundPolicy("Northwind", welcome_newcomers=False),
        lambda: NOW,
    )
    assert off.newcomers == [] and off.chats == [] and off.messages == {"IN1": 1}
    for body, sender in (("STOP", "+4915112345678"), ("hello", "72345")):
        world = World()
        await receive(world, FakeReader({"m": inbound(body, sender=sender)}), "m")
        assert world.newcomers == [] and world.chats == [] and world.messages == {"IN1": 1}


def test_the_newcomer_record_per_channel() -> None:
    whatsapp = newcomer(Channel.WHATSAPP, "4915112345678", "  Ana   Lima ")
    assert whatsapp is not None
    assert (whatsapp.whatsapp_id, whatsapp.phone_e164, whatsapp.name) == (
        "4915112345678",
        "+4915112345678",
        "Ana Lima",
    )
    telegram = newcomer(Channel.TELEGRAM, "555123", None)
    assert telegram is not None and (telegram.telegram_chat_id, telegram.name) == (
        555123,
        "New Telegram contact",
    )
    email = newcomer(Channel.EMAIL, "Ana@Example.org", "Ana")
    assert email is not None and email.email == "ana@example.org"
    # Nothing to answer on, or a machine: no customer.
    assert newcomer(Channel.TELEGRAM, "-100200300", "A group") is None
    assert newcomer(Channel.EMAIL, "MAILER-DAEMON@mx.example.org", None) is None
    assert newcomer(Channel.EMAIL, "not an address", None) is None
    assert newcomer(Channel.SMS, "NORTHWIND", None) is None
    assert newcomer(Channel.WHATSAPP, "12", None) is None
    # The fallback name never spells out the whole number (names are shown in Slack by default).
    sms = newcomer(Channel.SMS, "+4915112345678", None)
    assert sms is not None and "4915112345678" not in sms.name


async def test_a_provider_retry_of_a_webhook_with_a_file_does_not_download_the_file_again() -> None:
    fetched: list[str] = []

    class Counting:
        async def fetch(self, reference: MediaReference, max_bytes: int) -> bytes:
            fetched.append(reference.locator)
            return b"%PDF-1.4 a letter"

    message = inbound("my letter").messages[0]
    with_file = WebhookContents(
        messages=(CustomerMessage(message.message, media=(MediaReference("twilio", "ME1", "document"),)),)
    )
    world = World()
    reader = FakeReader({"f": with_file})
    for _ in range(3):  # the first delivery and two retries of it
        await receive_webhook(lambda: FakeUow(world), delivery("f"), reader, POLICY, lambda: NOW, Counting())
    assert fetched == ["ME1"] and world.chats == [(7, "sms", "my letter")]


async def test_a_duplicate_delivery_applies_nothing_again() -> None:
    world = World()
    reader = FakeReader({"stop": inbound("STOP")})
    await receive(world, reader, "stop")
    again = await receive(world, reader, "stop")
    assert again.duplicate and len(world.ledger) == 1


async def test_the_same_message_in_another_delivery_is_recorded_once() -> None:
    world = World()
    reader = FakeReader({"a": inbound("STOP"), "b": inbound("STOP")})
    await receive(world, reader, "a", key="k1")
    outcome = await receive(world, reader, "b", key="k2")
    assert outcome.inbound[0].communication_id is None and len(world.ledger) == 1


async def test_a_failure_rolls_back_and_keeps_the_webhook_as_failed() -> None:
    world = World()
    receipt = DeliveryReceipt("twilio", "SM-unknown", MessageStatus.DELIVERED, NOW)
    reader = FakeReader({"r": WebhookContents(receipts=(receipt,), messages=inbound("STOP").messages)})
    outcome = await receive(world, reader, "r")
    assert outcome.failed and "UnknownMessage" in (outcome.error or "")
    assert world.ledger == [] and world.messages == {}  # nothing half-applied
    assert world.inbox[("twilio", "k1")]["status"] == "failed"
    assert await replay_failed_webhooks(lambda: FakeUow(world), reader, POLICY) == (0, 1)
    world.known_messages.add("SM-unknown")
    assert await replay_failed_webhooks(lambda: FakeUow(world), reader, POLICY) == (1, 0)
    assert world.inbox[("twilio", "k1")]["status"] == "applied" and len(world.ledger) == 1


async def test_unreadable_bodies_are_kept_as_failed() -> None:
    world = World()
    outcome = await receive(world, FakeReader({}), "garbage")
    assert outcome.failed and world.inbox[("twilio", "k1")]["status"] == "failed"


async def test_staff_updates_are_left_to_the_staff_bot() -> None:
    world = World(staff_telegram={42})
    contents = WebhookContents(messages=inbound("/report").messages, sender_user_id=42)
    outcome = await receive(world, FakeReader({"t": contents}), "t")
    assert outcome.staff_update and world.messages == {}


async def test_record_consent_can_skip_a_repeat() -> None:
    world = World()

    async def unsubscribe() -> ConsentRecorded | None:
        return await record_consent(
            FakeUow(world),
            7,
            Channel.EMAIL,
            ConsentStatus.OPTED_OUT,
            "email_unsubscribe",
            None,
            NOW,
            skip_if_unchanged=True,
        )

    first, again = await unsubscribe(), await unsubscribe()
    assert first is not None and first.changed and again is None and len(world.ledger) == 1


@pytest.mark.parametrize(
    ("text", "word"), [("stop", "STOP"), (" Stop! ", "STOP"), ("/start@Bot abc", "/start"), ("", "")]
)
def test_keyword_word(text: str, word: str) -> None:
    assert keyword_word(text) == word


def test_a_first_contact_is_placed_where_their_number_says() -> None:
    from domain.conversations.newcomers import newcomer, placed

    def where(address: str) -> tuple[str | None, str, str]:
        found = newcomer(Channel.SMS, address, None)
        assert found is not None
        at = placed(found, "Europe/Berlin", "de")
        return at.country, at.timezone, at.locale

    assert where("+4915112345678") == ("DE", "Europe/Berlin", "de")
    assert where("+447400123456") == ("GB", "Europe/London", "en"), "a UK mobile keeps London's clock"
    assert where("+12125550188") == ("US", "America/New_York", "en")
    assert where("+15550009999") == ("US", "Europe/Berlin", "en"), "the US spans zones: the business's"
    email = newcomer(Channel.EMAIL, "ana@example.org", "Ana")
    assert email is not None
    at = placed(email, "Europe/Berlin", "de")
    assert (at.country, at.timezone, at.locale) == (None, "Europe/Berlin", "de"), "an email tells nothing"


def test_a_telegram_first_contact_reads_the_language_their_app_is_set_to() -> None:
    """Zoë wrote in English from a Telegram set to English and got the survey in German, the business's."""
    from domain.conversations.newcomers import newcomer, placed
    from providers.telegram.webhooks import parse_telegram_update

    update = {
        "update_id": 1,
        "message": {
            "message_id": 5,
            "date": 1796600000,
            "chat": {"id": 424242, "type": "private"},
            "from": {"id": 424242, "is_bot": False, "first_name": "Zoë", "language_code": "en-GB"},
            "text": "Hi, any appointments tomorrow?",
        },
    }
    message = parse_telegram_update(update)
    assert message is not None and message.sender_language == "en-GB"
    found = newcomer(Channel.TELEGRAM, message.from_address, message.sender_name)
    assert found is not None
    at = placed(found, "Europe/Berlin", "de", said_language=message.sender_language)
    assert (at.timezone, at.locale) == ("Europe/Berlin", "en")
    assert placed(found, "Europe/Berlin", "de", said_language="x-klingon").locale == "de", (
        "malformed: ignored"
    )
    # A number's country still says more than an app: +49 reads German whatever the phone's language.
    sms = newcomer(Channel.SMS, "+4915112345678", None)
    assert sms is not None and placed(sms, "UTC", "en", said_language="en").locale == "de"
