"""Canned replies and `chat open` with fakes: filling, refusing unfilled text, validation, audit, channel choice."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.commands.canned import CannedLookup, parse_canned
from bot.commands.parsing import ParseError
from domain.audit import AuditEntry
from domain.canned_replies.model import (
    CannedActor,
    CannedReply,
    CannedReplyDraft,
    CannedReplyError,
    CannedReplyNotFound,
    CustomerFacts,
)
from domain.canned_replies.rules import (
    fill,
    known_values,
    require_filled,
    require_words_for_the_customer,
    validate_draft,
    variables_in,
)
from domain.canned_replies.use_cases import create_canned_reply, delete_canned_reply, update_canned_reply
from domain.consent.model import ChannelConsent
from domain.conversations.desk import DeskChat, DeskError
from domain.conversations.opening import Reachability, choose_channel, open_conversation
from domain.conversations.use_cases import DeskActor
from domain.vocabulary import Channel, ChatStatus, ConsentStatus
from tests.fakes.transaction import FakeTransaction

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ME = CannedActor(3, "markus@x.example", "web")


def reply(body: str, shortcut: str = "hours") -> CannedReply:
    return CannedReply(1, shortcut, "Title", body, None, 1)


# --- filling ------------------------------------------------------------------------------------------------


def test_known_variables_are_filled_and_the_rest_named_for_the_agent() -> None:
    known = known_values(
        CustomerFacts("Ada Lovelace", "ada@x.example", None, "Berlin Mitte"),
        agent_name="Lena Hoffmann",
        business_name="Northwind",
    )
    filled = fill(
        reply(
            "Hi {first_name}, {clinic} can see you at {new_time} on {date}. {new_time}! – {agent_first_name}"
        ),
        known,
    )
    assert filled.text == "Hi Ada, Berlin Mitte can see you at {new_time} on {date}. {new_time}! – Lena"
    assert filled.missing == ("new_time", "date") and not filled.ready
    assert set(filled.filled) == {"first_name", "clinic", "agent_first_name"}


def test_an_unknown_field_such_as_a_missing_phone_is_left_for_the_agent() -> None:
    known = known_values(CustomerFacts("Bo", None, None, None), agent_name="Lena", business_name="Northwind")
    filled = fill(reply("Call {phone}, {name}"), known)
    assert filled.text == "Call {phone}, Bo" and filled.missing == ("phone",)


def test_values_are_inserted_as_text_never_evaluated_or_filled_again() -> None:
    hostile = "{agent_name} {{7*7}} {0.__class__} %(x)s"
    known = known_values(CustomerFacts(hostile), agent_name="Lena", business_name="N")
    filled = fill(reply("Hi {name}!"), known)
    assert filled.text == f"Hi {hostile}!"  # one pass: the {agent_name} in the value is not filled
    with pytest.raises(CannedReplyError, match=r"\{agent_name\}"):
        require_filled(filled.text)  # and the send refuses what still looks like a variable


@given(st.text(max_size=200))
def test_filling_never_fails_and_leaves_no_known_variable_behind(name: str) -> None:
    known = {"first_name": "Ada", "name": name} if name else {"first_name": "Ada"}
    filled = fill(reply("{first_name} {name} {x}"), known)
    assert filled.text.startswith("Ada ")
    assert "x" in filled.missing


def test_a_reply_with_unfilled_variables_is_refused_naming_each() -> None:
    with pytest.raises(CannedReplyError) as refused:
        require_filled("See you at {new_time} on {date}, {new_time}.")
    assert "{new_time} and {date}" in str(refused.value)
    require_filled(
        "See you at 10:30 on Friday. {Not a variable} {} { x }"
    )  # braces that are no variable pass


# --- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("draft", "says"),
    [
        (CannedReplyDraft("two words", "T", "Body"), "one word"),
        (CannedReplyDraft("hours", "", "Body"), "title"),
        (CannedReplyDraft("hours", "T", "  "), "needs some text"),
        (CannedReplyDraft("hours", "T", "Hi {{ first_name }}"), "not templates"),
        (CannedReplyDraft("hours", "T", "{% for x in y %}"), "not templates"),
        (CannedReplyDraft("hours", "T", "Hi {First Name}"), "“{First Name}” is not a variable"),
        (CannedReplyDraft("hours", "T", "Hi {name.__class__}"), "is not a variable"),
        (CannedReplyDraft("hours", "T", "x" * 4001), "at most 4000"),
    ],
)
def test_drafts_are_refused_in_words(draft: CannedReplyDraft, says: str) -> None:
    with pytest.raises(CannedReplyError, match=says):
        validate_draft(draft)


def test_a_draft_is_tidied() -> None:
    tidy = validate_draft(CannedReplyDraft(" /Hours ", " Opening hours ", " Hi {first_name} ", "  "))
    assert tidy == CannedReplyDraft("hours", "Opening hours", "Hi {first_name}", None)
    assert variables_in("{a} {b} {a}") == ("a", "b")


# --- create, update, delete: one transaction each, audited --------------------------------------------------


@dataclass
class FakeCannedReplies:
    rows: dict[int, CannedReply] = field(default_factory=dict)

    async def by_id(self, reply_id: int, *, for_update: bool = False) -> CannedReply | None:
        return self.rows.get(reply_id)

    async def by_shortcut(self, shortcut: str) -> CannedReply | None:
        return next((r for r in self.rows.values() if r.shortcut == shortcut), None)

    async def add(self, draft: CannedReplyDraft, created_by: int | None, at: datetime) -> CannedReply | None:
        if await self.by_shortcut(draft.shortcut):
            return None
        new = CannedReply(
            len(self.rows) + 1, draft.shortcut, draft.title, draft.body, draft.team, created_by, at
        )
        self.rows[new.id] = new
        return new

    async def save(self, reply_id: int, draft: CannedReplyDraft, at: datetime) -> None:
        old = self.rows[reply_id]
        self.rows[reply_id] = CannedReply(
            reply_id, draft.shortcut, draft.title, draft.body, draft.team, old.created_by, at
        )

    async def delete(self, reply_id: int) -> None:
        del self.rows[reply_id]


@dataclass
class FakeAudit:
    entries: list[AuditEntry] = field(default_factory=list)

    def record(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


class FakeCannedUnitOfWork(FakeTransaction):
    def __init__(self) -> None:
        super().__init__()
        self.canned_replies = FakeCannedReplies()


async def test_create_update_delete_are_audited_and_shortcuts_stay_unique() -> None:
    uow = FakeCannedUnitOfWork()
    made = await create_canned_reply(uow, CannedReplyDraft("Hours", "Hours", "Open {day}"), ME, now=NOW)
    assert made.shortcut == "hours" and made.created_by == 3
    with pytest.raises(CannedReplyError, match="already a canned reply with the shortcut hours"):
        await create_canned_reply(uow, CannedReplyDraft("hours", "Again", "x"), ME, now=NOW)
    other = await create_canned_reply(uow, CannedReplyDraft("thanks", "Thanks", "Thank you"), ME, now=NOW)
    with pytest.raises(CannedReplyError, match="already"):
        await update_canned_reply(uow, other.id, CannedReplyDraft("hours", "T", "x"), ME, now=NOW)
    changed = await update_canned_reply(
        uow, made.id, CannedReplyDraft("hours", "Opening hours", "Open {day}", "Front desk"), ME, now=NOW
    )
    assert changed.team == "Front desk"
    await delete_canned_reply(uow, other.id, ME)
    with pytest.raises(CannedReplyNotFound):
        await delete_canned_reply(uow, other.id, ME)
    assert [(e.action, e.target) for e in uow.audit.entries] == [
        ("canned_reply.create", "canned_reply:1"),
        ("canned_reply.create", "canned_reply:2"),
        ("canned_reply.update", "canned_reply:1"),
        ("canned_reply.delete", "canned_reply:2"),
    ]
    assert uow.commits == 4 and uow.audit.entries[2].detail["variables"] == ["day"]


# --- chat open: which channel, and refusals in words ---------------------------------------------------------

ADA = Reachability(
    7,
    "Ada",
    {Channel.SMS: "+491511", Channel.WHATSAPP: "491511", Channel.EMAIL: "ada@x.example"},
    {Channel.SMS: ChannelConsent(ConsentStatus.OPTED_OUT, "sms_keyword", NOW - timedelta(days=3))},
    preferred=Channel.SMS,
    recent=(Channel.EMAIL, Channel.WHATSAPP),
)


def test_the_channel_asked_for_the_preferred_then_the_last_used() -> None:
    assert choose_channel(ADA, Channel.WHATSAPP) == (Channel.WHATSAPP, "the channel you asked for")
    # SMS is preferred but opted out of, so the channel she last used
    assert choose_channel(ADA, None) == (Channel.EMAIL, "the channel they last used")
    plain = Reachability(8, "Bo", {Channel.EMAIL: "bo@x.example"})
    assert choose_channel(plain, None) == (Channel.EMAIL, "a channel that reaches them")


def test_refusals_name_the_reason() -> None:
    with pytest.raises(DeskError, match=r"Ada opted out of SMS on 27 Feb 2026"):
        choose_channel(ADA, Channel.SMS)
    with pytest.raises(DeskError, match="Ada has no Telegram chat"):
        choose_channel(ADA, Channel.TELEGRAM)
    with pytest.raises(DeskError, match="cannot start a conversation on the website chat"):
        choose_channel(ADA, Channel.CHAT)
    nobody = Reachability(9, "Cy", {})
    with pytest.raises(DeskError, match="Cy cannot be reached on any channel: Cy has no WhatsApp number"):
        choose_channel(nobody, None)


@dataclass
class FakeOpening:
    reach: Reachability | None
    live: DeskChat | None = None
    opened: list[tuple[int, Channel, int]] = field(default_factory=list)
    turns: list[str] = field(default_factory=list)
    assigned: list[int] = field(default_factory=list)
    woke: list[int] = field(default_factory=list)

    async def reachability(self, customer_id: int, now: datetime) -> Reachability | None:
        return self.reach

    async def live_chat(self, customer_id: int, channel: Channel) -> DeskChat | None:
        return self.live if self.live is not None and self.live.channel == channel.value else None

    async def open_chat(self, customer_id: int, channel: Channel, staff_id: int, at: datetime) -> int:
        self.opened.append((customer_id, channel, staff_id))
        return 40

    async def assign(self, chat_id: int, staff_id: int) -> None:
        self.assigned.append(staff_id)

    async def wake(self, chat_id: int, at: datetime) -> None:
        self.woke.append(chat_id)

    async def add_system_turn(self, chat_id: int, body: str, at: datetime) -> None:
        self.turns.append(body)

    async def staff_name(self, staff_id: int) -> str:
        return "Lena Hoffmann"


class FakeOpeningUnitOfWork(FakeCannedUnitOfWork):
    def __init__(self, opening: FakeOpening) -> None:
        super().__init__()
        self.opening = opening


LENA = DeskActor(5, "lena@x.example", "slack")


async def test_opening_a_new_conversation_assigns_it_notes_it_and_audits_it() -> None:
    uow = FakeOpeningUnitOfWork(FakeOpening(ADA))
    opened = await open_conversation(uow, 7, LENA, channel=Channel.WHATSAPP, now=NOW)
    assert (opened.chat_id, opened.created, opened.assigned_name) == (40, True, "Lena Hoffmann")
    assert uow.opening.opened == [(7, Channel.WHATSAPP, 5)]
    assert uow.opening.turns == ["Opened by Lena Hoffmann on WhatsApp (the channel you asked for)."]
    assert "24 hours" in opened.note  # she has not written on WhatsApp lately
    [entry] = uow.audit.entries
    assert (entry.action, entry.target, entry.detail["created"]) == ("chat.open", "chat:40", True)
    assert uow.commits == 1


async def test_an_open_conversation_is_returned_not_doubled() -> None:
    snoozed = DeskChat(12, 7, "Ada", "email", ChatStatus.SNOOZED, None, None, NOW + timedelta(hours=1), NOW)
    uow = FakeOpeningUnitOfWork(FakeOpening(ADA, live=snoozed))
    opened = await open_conversation(uow, 7, LENA, now=NOW)
    assert (opened.chat_id, opened.created, opened.channel) == (12, False, Channel.EMAIL)
    assert uow.opening.opened == [] and uow.opening.woke == [12] and uow.opening.assigned == [5]
    assert uow.audit.entries[0].detail["created"] is False


async def test_no_such_customer_or_channel_changes_nothing() -> None:
    uow = FakeOpeningUnitOfWork(FakeOpening(None))
    with pytest.raises(DeskError, match="no customer #7"):
        await open_conversation(uow, 7, LENA, now=NOW)
    uow = FakeOpeningUnitOfWork(FakeOpening(ADA))
    with pytest.raises(DeskError, match="opted out of SMS"):
        await open_conversation(uow, 7, LENA, channel=Channel.SMS, now=NOW)
    assert uow.commits == 0 and uow.audit.entries == [] and uow.opening.opened == []


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("", CannedLookup("")),
        ("resch", CannedLookup("resch")),
        ("hours for 12", CannedLookup("hours", 12)),
        ("hours for #12", CannedLookup("hours", 12)),
        ("thanks for coming", CannedLookup("thanks for coming")),  # a title with "for" in it is a search
    ],
)
def test_the_canned_command_reads_a_search_or_a_conversation(text: str, read: CannedLookup) -> None:
    assert parse_canned(text.split(), text, NOW.date()) == read


def test_a_conversation_without_a_reply_is_a_usage_error() -> None:
    with pytest.raises(ParseError, match="which reply"):
        parse_canned(["for", "12"], "for 12", NOW.date())


def test_a_first_contact_s_made_up_name_is_no_first_name_to_greet_them_by() -> None:
    for made_up in ("WhatsApp contact …4321", "New Email contact", "Website visitor"):
        known = known_values(CustomerFacts(made_up), agent_name="Lena", business_name="Northwind")
        assert "first_name" not in known and "name" not in known
    assert (
        known_values(CustomerFacts("Mira Okafor"), agent_name="L", business_name="N")["first_name"] == "Mira"
    )


@pytest.mark.parametrize(
    "typed",
    ["canned thanks for 522", "Canned hours", "/thanks", "/sb canned thanks for 12", "/kpi@nw_bot revenue"],
)
def test_a_command_typed_where_replies_go_is_refused_not_sent(typed: str) -> None:
    with pytest.raises(CannedReplyError, match="looks like a command, and a reply here goes to the customer"):
        require_words_for_the_customer(typed)


def test_the_refusal_says_how_to_run_a_command_where_it_was_typed() -> None:
    with pytest.raises(CannedReplyError, match="Run commands in the channel with /sb"):
        require_words_for_the_customer("/canned thanks for 12", "slack")
    # The walk copied the example as written, and it named conversation 12, not the one it was typed in.
    with pytest.raises(CannedReplyError, match=r"\(`/sb canned hours for 516`\)"):
        require_words_for_the_customer("canned hours", "slack", 516)
    with pytest.raises(CannedReplyError, match=r"\(`/sb canned SHORTCUT for 516`\)"):
        require_words_for_the_customer("/sb revenue last 30 days", "slack", 516)
    with pytest.raises(CannedReplyError, match="Send a command to the bot as a message of its own"):
        require_words_for_the_customer("/canned thanks for 12", "telegram")


@pytest.mark.parametrize(
    "said",
    ["Canned food is fine before the visit", "see /faq on our site", "canned", "/ ok", "/path/to/form.pdf"],
)
def test_words_that_only_start_like_a_command_go_as_written(said: str) -> None:
    require_words_for_the_customer(said)
