"""CSAT with fakes: resolving queues one survey on the conversation's channel, a score reply is captured without
reopening anything, WhatsApp outside its window gets the approved template, an opted-out customer gets none."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import pytest

from domain.audit import AuditEntry
from domain.consent.model import ChannelConsent, ConsentPolicy
from domain.conversations.csat import (
    ANSWER_WITHIN,
    SURVEY_TEMPLATE,
    SURVEY_TEXT,
    CsatLinks,
    CsatPolicy,
    Survey,
    SurveyReply,
    SurveyTarget,
    answer_by_link,
    capture_survey_answer,
    comment_by_link,
    csat_token,
    read_csat_token,
    read_score,
    read_scored_comment,
)
from domain.conversations.desk import AgentLoad, DeskChat
from domain.conversations.use_cases import DeskActor, resolve_chat
from domain.delivery.outbox import OutboxEntry
from domain.delivery.ports import InboundMessage
from domain.messages.model import Recipient, StoredTemplate
from domain.templates.model import MessageTemplate
from domain.vocabulary import Availability, Channel, ChatStatus, ConsentStatus, MessageCategory, MessageStatus

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday morning: no quiet hours
LENA = DeskActor(7, "lena@northwind.example", "slack")
LINKS = CsatLinks("https://sb.example", "s3cret")
ADDRESSES = {
    Channel.WHATSAPP: "4915100000001",
    Channel.SMS: "+4915100000001",
    Channel.TELEGRAM: "4242",
    Channel.EMAIL: "ada@example.com",
}
TEMPLATE = StoredTemplate(
    31,
    MessageTemplate(
        SURVEY_TEMPLATE,
        Channel.WHATSAPP,
        "en",
        "Hi {{ first_name }}, how did we do? Reply 1 (poor) to 5 (great).",
        MessageCategory.TRANSACTIONAL,
        variables=("first_name",),
        whatsapp_name=SURVEY_TEMPLATE,
        whatsapp_language="en_US",
        whatsapp_params=("first_name",),
    ),
)


@dataclass
class Stored:
    """What the fakes hold, committed or not."""

    channel: str = "whatsapp"
    status: ChatStatus = ChatStatus.OPEN
    requested_at: datetime | None = None
    score: int | None = None
    answered_at: datetime | None = None
    comment: str | None = None
    customer_wrote: bool = True
    staff_wrote_since: bool = False
    locale: str = "en"
    last_inbound_whatsapp_at: datetime | None = NOW - timedelta(hours=1)
    consents: dict[Channel, ChannelConsent] = field(default_factory=dict)
    queued: list[OutboxEntry] = field(default_factory=list)
    messages: dict[str, tuple[int, str, str | None]] = field(default_factory=dict)
    turns: list[tuple[str, str]] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    commits: int = 0


class FakeUow:
    """The desk, the sending repositories and the surveys over one copy, written back on commit."""

    def __init__(self, stored: Stored, *, surveys_on: bool = True) -> None:
        self.stored = stored
        self.policy = CsatPolicy(ConsentPolicy(), LINKS, enabled=surveys_on)

    async def __aenter__(self) -> Self:
        self.draft = copy.deepcopy(self.stored)
        self.desk = self.audit = self.csat = self.sending = self
        self.recipients = self.templates = self.outbox_writer = self.messages = self
        self.surveys = self
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass

    async def commit(self) -> None:
        self.draft.commits += 1
        self.stored.__dict__.update(copy.deepcopy(self.draft).__dict__)

    # the desk
    async def chat(self, chat_id: int, *, for_update: bool = False) -> DeskChat | None:
        d = self.draft
        return DeskChat(5, 42, "Ada", d.channel, d.status, 7, "Lena", None, NOW) if chat_id == 5 else None

    async def agent_loads(self) -> list[AgentLoad]:
        return [AgentLoad(7, "Lena", LENA.email, Availability.ONLINE, 1, 8)]

    async def set_status(self, chat_id: int, status: ChatStatus, at: datetime, **_: Any) -> None:
        self.draft.status = status

    async def add_system_turn(self, chat_id: int, body: str, at: datetime) -> None:
        self.draft.turns.append(("system", body))

    def record(self, entry: AuditEntry) -> None:
        self.draft.audit.append(entry)

    # sending
    async def by_ids(self, ids: Sequence[int], *, channels: Any, now: datetime) -> list[Recipient]:
        ada = Recipient(
            42,
            "Ada Lovelace",
            self.draft.locale,
            "UTC",
            ADDRESSES,
            consents=self.draft.consents,
            last_inbound_whatsapp_at=self.draft.last_inbound_whatsapp_at,
        )
        return [ada] if 42 in ids else []

    async def variants(self, name: str) -> list[StoredTemplate]:
        return [TEMPLATE] if name == SURVEY_TEMPLATE else []

    async def add_many(self, entries: Sequence[OutboxEntry], now: datetime) -> dict[str, int]:
        for entry in entries:
            self.draft.queued.append(entry)
            self.draft.messages[entry.idempotency_key] = (
                len(self.draft.messages) + 100,
                entry.status.value,
                entry.status_reason,
            )
        return {"added": len(entries)}

    async def by_idempotency_key(self, key: str) -> tuple[int, str, str | None] | None:
        return self.draft.messages.get(key)

    # the survey desk
    async def survey_target(self, chat_id: int) -> SurveyTarget | None:
        d = self.draft
        return SurveyTarget(5, 42, d.channel, d.requested_at, d.customer_wrote) if chat_id == 5 else None

    async def mark_requested(self, chat_id: int, message_id: int, body: str, at: datetime) -> None:
        self.draft.requested_at = at
        self.draft.turns.append(("bot", body))

    async def note(self, chat_id: int, body: str, at: datetime) -> None:
        self.draft.turns.append(("system", body))

    # the answers
    def _survey(self) -> Survey | None:
        d = self.draft
        if d.requested_at is None:
            return None
        return Survey(5, 42, d.requested_at, d.score, d.answered_at, d.comment, d.staff_wrote_since)

    async def open_survey(self, customer_id: int, channel: Channel, since: datetime) -> Survey | None:
        d = self.draft
        fits = channel.value == d.channel and d.status is ChatStatus.CLOSED
        return self._survey() if fits and d.requested_at is not None and d.requested_at >= since else None

    async def survey(self, chat_id: int) -> Survey | None:
        return self._survey() if chat_id == 5 else None

    async def record_score(self, chat_id: int, score: int, at: datetime) -> None:
        self.draft.score, self.draft.answered_at = score, at

    async def record_comment(self, chat_id: int, comment: str, at: datetime) -> None:
        self.draft.comment = comment

    async def add_answer_turn(
        self, chat_id: int, communication_id: int | None, body: str, note: str, at: datetime
    ) -> None:
        if communication_id is not None:
            self.draft.turns.append(("customer", body))
        self.draft.turns.append(("system", note))


async def resolve(stored: Stored, *, surveys_on: bool = True, at: datetime = NOW) -> None:
    await resolve_chat(FakeUow(stored, surveys_on=surveys_on), 5, LENA, now=at)


def inbound(body: str, channel: Channel = Channel.WHATSAPP) -> InboundMessage:
    return InboundMessage("whatsapp_cloud", channel, "wamid.1", ADDRESSES[channel], "49151", body, NOW)


@pytest.mark.parametrize("channel", [Channel.WHATSAPP, Channel.SMS, Channel.TELEGRAM])
async def test_resolving_queues_one_text_survey_on_the_conversations_channel_in_the_same_commit(
    channel: Channel,
) -> None:
    stored = Stored(channel=channel.value)
    await resolve(stored)
    assert stored.commits == 1 and stored.status is ChatStatus.CLOSED
    [survey] = stored.queued
    assert (survey.channel, survey.body, survey.category) == (
        channel,
        SURVEY_TEXT,
        MessageCategory.CONVERSATIONAL,
    )
    assert survey.to_address == ADDRESSES[channel] and survey.status is MessageStatus.PLANNED
    assert stored.requested_at == NOW
    assert stored.turns == [("system", "Resolved."), ("bot", SURVEY_TEXT)]
    assert [a.action for a in stored.audit] == ["chat.resolve", "message.send"]

    # Reopened and resolved again: still one survey for the conversation.
    stored.status = ChatStatus.OPEN
    await resolve(stored, at=NOW + timedelta(hours=1))
    assert len(stored.queued) == 1 and stored.requested_at == NOW


@pytest.mark.parametrize("channel", [Channel.WHATSAPP, Channel.TELEGRAM, Channel.EMAIL])
async def test_a_german_customer_is_asked_in_german(channel: Channel) -> None:
    stored = Stored(channel=channel.value, locale="de_AT")
    await resolve(stored)
    [survey] = stored.queued
    assert survey.body is not None
    if channel is Channel.EMAIL:
        assert survey.subject == "Wie war es?"
        assert survey.body.startswith("Wie zufrieden waren Sie mit uns? Ein Klick genügt:\n\n1 (schlecht): ")
        assert "5 (sehr gut): " in survey.body and "Kommentar" in survey.body
    else:
        assert survey.body.startswith("Wie zufrieden waren Sie mit uns? Antworten Sie mit 1 (schlecht) bis 5")
    if channel is Channel.WHATSAPP:  # the list to tap, in German too
        assert survey.payload["choices"]["button"] == "Bewerten", survey.payload


async def test_whatsapp_outside_the_24_hour_window_gets_the_approved_template() -> None:
    stored = Stored(last_inbound_whatsapp_at=NOW - timedelta(hours=30))
    await resolve(stored)
    [survey] = stored.queued
    assert survey.payload["whatsapp_template"]["name"] == SURVEY_TEMPLATE
    assert survey.body == "Hi Ada, how did we do? Reply 1 (poor) to 5 (great)."
    assert survey.status is MessageStatus.PLANNED and stored.requested_at == NOW

    # A window closing within minutes is treated as closed: the outbox might send too late for it.
    almost = Stored(last_inbound_whatsapp_at=NOW - timedelta(hours=23, minutes=58))
    await resolve(almost)
    assert "whatsapp_template" in almost.queued[0].payload


async def test_an_opted_out_customer_gets_no_survey_and_the_conversation_says_why() -> None:
    opted_out = ChannelConsent(ConsentStatus.OPTED_OUT, "sms_keyword", NOW - timedelta(days=3))
    stored = Stored(channel="sms", consents={Channel.SMS: opted_out})
    await resolve(stored)
    assert [e.status for e in stored.queued] == [MessageStatus.SUPPRESSED]  # recorded, never sent
    assert stored.queued[0].body == "" and stored.requested_at is None
    assert stored.status is ChatStatus.CLOSED and stored.commits == 1
    assert stored.turns[-1][1].startswith("No satisfaction survey was sent: the customer opted out of SMS")


async def test_no_survey_when_surveys_are_off_and_a_note_when_the_channel_cannot_take_one() -> None:
    stored = Stored()
    await resolve(stored, surveys_on=False)
    assert stored.queued == [] and stored.requested_at is None and stored.status is ChatStatus.CLOSED

    video = Stored(channel="video")
    await resolve(video)
    assert video.queued == [] and video.status is ChatStatus.CLOSED
    assert video.turns[-1][1].startswith(
        "No satisfaction survey was sent: messages cannot be pushed on video"
    )


async def test_the_email_survey_carries_five_signed_one_click_links() -> None:
    stored = Stored(channel="email")
    await resolve(stored)
    [survey] = stored.queued
    assert survey.subject == "How did we do?"
    token = csat_token("s3cret", 5)
    for score in range(1, 6):
        assert f"https://sb.example/csat/{token}/{score}" in survey.body
    assert read_csat_token("s3cret", token) == 5
    assert read_csat_token("other", token) is None and read_csat_token("s3cret", token + "x") is None


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("5", 5),
        (" 4 ", 4),
        ("3.", 3),
        ("4/5", 4),
        ("2 of 5", 2),
        ("5 stars", 5),
        ("Five", 5),
        ("fünf", 5),
        ("５", 5),
        ("5\ufe0f\u20e3", 5),
        ("⭐⭐⭐⭐", 4),
        ("★", 1),
        ("great", 5),
        ("Sehr gut!", 5),  # the German survey's words for its ends
        ("schlecht", 1),
        ("gut", None),
        ("6", None),
        ("0", None),
        ("15", None),
        ("5 but the parking was awful", None),  # a score with words: read_scored_comment's
        ("4 von 5 Sternen", 4),
        ("⭐⭐⭐⭐⭐⭐", None),
        ("", None),
    ],
)
def test_a_bare_score_is_read_and_anything_else_is_not(text: str, score: int | None) -> None:
    assert read_score(text) == score


async def answer(
    stored: Stored, body: str, at: datetime, channel: Channel = Channel.WHATSAPP
) -> SurveyReply | None:
    uow = FakeUow(stored)
    async with uow:
        captured = await capture_survey_answer(
            uow, 42, replace(inbound(body, channel), received_at=at), 900, at
        )
        await uow.commit()
    return captured


async def test_a_score_reply_is_captured_and_does_not_reopen_then_a_comment_follows() -> None:
    stored = Stored()
    await resolve(stored)
    assert await answer(stored, "5", NOW + timedelta(hours=2))
    assert (stored.score, stored.answered_at, stored.status) == (
        5,
        NOW + timedelta(hours=2),
        ChatStatus.CLOSED,
    )
    assert stored.turns[-2:] == [
        ("customer", "5"),
        ("system", "The customer rated this conversation 5 of 5."),
    ]
    assert [(a.actor, a.action, a.detail) for a in stored.audit][-1] == (
        "customer:42",
        "chat.csat",
        {"score": 5},
    )

    # The comment is kept, and the message still goes the ordinary way (the caller reopens and assigns, and
    # adds the customer's turn): only the note is added here.
    comment = await answer(stored, "Lena was lovely, thanks!", NOW + timedelta(hours=2, minutes=3))
    assert comment is SurveyReply.COMMENT and stored.comment == "Lena was lovely, thanks!"
    assert stored.turns[-2:] == [
        ("system", "The customer rated this conversation 5 of 5."),
        ("system", "The customer added a comment to their rating."),
    ]

    # Later words are an ordinary message (the caller reopens the conversation), not a second comment.
    assert not await answer(stored, "One more question", NOW + timedelta(hours=2, minutes=5))
    assert not await answer(stored, "And another", NOW + timedelta(hours=5))
    assert stored.comment == "Lena was lovely, thanks!"


async def test_a_score_with_words_is_the_score_and_its_comment_and_the_words_reach_an_agent() -> None:
    """The walk's "4 - sehr nett, aber lange Wartezeit am Telefon" lost the score and reopened the chat: now
    both are kept, and the words go the ordinary way, as a comment after the score does."""
    stored = Stored()
    await resolve(stored)
    said = "4 - sehr nett, aber lange Wartezeit am Telefon"
    assert await answer(stored, said, NOW + timedelta(hours=2)) is SurveyReply.COMMENT
    assert (stored.score, stored.comment) == (4, "sehr nett, aber lange Wartezeit am Telefon")
    assert stored.turns[-1] == ("system", "The customer rated this conversation 4 of 5, with a comment.")

    # A number inside a sentence is no score: the message is left to the ordinary path, untouched.
    for asking in (
        "3 tablets left, please send a refill",
        "2 Kinder brauchen einen Termin, bitte zurückrufen",
    ):
        other = Stored()
        await resolve(other)
        assert await answer(other, asking, NOW + timedelta(hours=1)) is None
        assert (other.score, other.comment) == (None, None)


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("4 - sehr nett, aber lange Wartezeit am Telefon", (4, "sehr nett, aber lange Wartezeit am Telefon")),
        ("5! Thanks so much", (5, "Thanks so much")),
        ("4 von 5 Sternen, danke", (4, "danke")),
        ("3/5: parking was awful", (3, "parking was awful")),
        ("5 stars but please send the invoice again", (5, "but please send the invoice again")),
        ("5, super", (5, "super")),
        ("3 tablets left, please send a refill", None),
        ("1 more thing: my appointment on Monday must move", None),
        ("3. Stock ist schwer zu finden", None),
        ("5", None),
        ("12 apples", None),
        ("4th floor was hard to find", None),
        ("5 / 4", None),
    ],
)
def test_a_score_with_words_after_it_is_read_apart(text: str, read: tuple[int, str] | None) -> None:
    assert read_scored_comment(text) == read


async def test_a_number_answering_staff_after_the_survey_is_not_a_score() -> None:
    # After resolving, the agent asked "1) Monday or 2) Tuesday?": the customer's "2" answers that.
    stored = Stored()
    await resolve(stored)
    stored.staff_wrote_since = True
    assert await answer(stored, "2", NOW + timedelta(hours=1)) is None
    assert stored.score is None and stored.audit[-1].action != "chat.csat"


async def test_a_conversation_the_customer_never_wrote_in_gets_no_survey() -> None:
    stored = Stored(customer_wrote=False)
    await resolve(stored)
    assert stored.status is ChatStatus.CLOSED
    assert stored.queued == [] and stored.requested_at is None


async def test_what_is_not_an_answer_is_left_to_the_ordinary_path() -> None:
    stored = Stored()
    await resolve(stored)
    assert not await answer(
        stored, "My order has not arrived", NOW + timedelta(hours=1)
    )  # words, no score yet
    assert not await answer(stored, "5", NOW + timedelta(hours=1), Channel.SMS)  # another channel
    assert not await answer(stored, "5", NOW + ANSWER_WITHIN + timedelta(minutes=1))  # too late
    stored.status = ChatStatus.OPEN
    assert not await answer(stored, "5", NOW + timedelta(hours=1))  # reopened: "5" answers the agent
    assert stored.score is None and stored.comment is None


async def test_email_links_record_the_latest_click_and_a_comment_while_the_survey_is_open() -> None:
    stored = Stored(channel="email")
    await resolve(stored)
    later = NOW + timedelta(days=1)
    assert (await answer_by_link(FakeUow(stored), 5, 4, later)).outcome == "recorded"
    assert (stored.score, stored.answered_at) == (4, later)
    again = await answer_by_link(FakeUow(stored), 5, 4, later + timedelta(minutes=1))
    assert again.outcome == "unchanged" and stored.answered_at == later  # the same click changes nothing
    assert (await answer_by_link(FakeUow(stored), 5, 2, later + timedelta(minutes=2))).outcome == "recorded"
    assert stored.score == 2
    assert (await comment_by_link(FakeUow(stored), 5, "  Slow at first.  ", later)).outcome == "recorded"
    assert stored.comment == "Slow at first." and stored.status is ChatStatus.CLOSED

    closed = await answer_by_link(FakeUow(stored), 5, 5, NOW + ANSWER_WITHIN + timedelta(seconds=1))
    assert (closed.outcome, closed.score, stored.score) == ("closed", 2, 2)
    assert (await answer_by_link(FakeUow(stored), 9, 5, later)).outcome == "unknown"
    assert (await answer_by_link(FakeUow(stored), 5, 6, later)).outcome == "unknown"
