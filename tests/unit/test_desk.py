"""The agent desk with fakes: who takes a new conversation, and assign / snooze / resolve / reopen / away."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

import pytest

from domain.audit import AuditEntry
from domain.conversations.desk import AgentLoad, DeskChat, DeskError, choose_agent, find_agent
from domain.conversations.model import ChatNotFound
from domain.conversations.use_cases import (
    DeskActor,
    assign_chat,
    reopen_chat,
    resolve_chat,
    set_availability,
    snooze_chat,
    wake_snoozed_chats,
)
from domain.vocabulary import Availability, ChatStatus

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LENA = AgentLoad(7, "Lena Hoffmann", "lena@northwind.example", Availability.ONLINE, open_chats=2, capacity=3)
JONAS = AgentLoad(8, "Jonas Weber", "jonas@northwind.example", Availability.ONLINE, open_chats=1, capacity=3)
AWAY = AgentLoad(9, "Away Agent", "away@northwind.example", Availability.AWAY, open_chats=0, capacity=3)
FULL = AgentLoad(10, "Full Agent", "full@northwind.example", Availability.ONLINE, open_chats=3, capacity=3)
ME = DeskActor(7, "lena@northwind.example", "slack")


def test_the_free_online_agent_with_the_fewest_takes_a_new_conversation() -> None:
    assert choose_agent([LENA, JONAS, AWAY, FULL]) == JONAS
    assert choose_agent([LENA, replace(JONAS, open_chats=2)]) == LENA  # a tie goes to the lower id
    assert choose_agent([AWAY, FULL]) is None  # away or at capacity: the conversation waits unassigned
    assert choose_agent([]) is None


def test_a_customers_clinic_comes_first_and_any_free_agent_when_nobody_there_is() -> None:
    berlin = replace(LENA, team="BER", team_name="Berlin Mitte")  # 2 open
    london = replace(JONAS, team="LON", team_name="London Camden")  # 1 open
    assert choose_agent([berlin, london], "BER") == berlin
    assert choose_agent([berlin, london], None) == london
    assert choose_agent([replace(berlin, capacity=2), london], "BER") == london  # Berlin is full
    assert choose_agent([berlin, london], "VIE") == london  # nobody at that clinic


def test_assigning_to_a_team_picks_its_free_agent_or_says_nobody_there_is_free() -> None:
    berlin = replace(LENA, team="BER", team_name="Berlin Mitte")
    berlin2 = replace(FULL, team="BER", team_name="Berlin Mitte")
    assert find_agent([berlin, berlin2, JONAS], "berlin mitte", me=8) == berlin
    assert find_agent([berlin, berlin2, JONAS], "BER", me=8) == berlin
    with pytest.raises(DeskError, match="Nobody at Berlin Mitte is online"):
        find_agent([replace(berlin, availability=Availability.AWAY), berlin2], "ber", me=8)


def test_agents_are_found_by_email_name_or_me() -> None:
    agents = [LENA, JONAS]
    assert find_agent(agents, None, me=7) == LENA
    assert find_agent(agents, "me", me=8) == JONAS
    assert find_agent(agents, "JONAS@northwind.example", me=7) == JONAS
    assert find_agent(agents, "jonas weber", me=7) == JONAS
    assert find_agent(agents, "nobody", me=7) is None


@dataclass
class Desk:
    chats: dict[int, DeskChat] = field(default_factory=dict)
    agents: list[AgentLoad] = field(default_factory=lambda: [LENA, JONAS])
    turns: list[tuple[int, str]] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    availability: dict[int, Availability] = field(default_factory=dict)
    commits: int = 0


class FakeDeskUow:
    """Works on a copy and writes it back on commit, so leaving without commit forgets."""

    def __init__(self, stored: Desk) -> None:
        self.stored = stored

    async def __aenter__(self) -> Self:
        self.draft = copy.deepcopy(self.stored)
        self.desk = self.audit = self
        self.surveys = None  # CSAT surveys are tested in test_csat.py
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass

    async def commit(self) -> None:
        self.draft.commits += 1
        self.stored.__dict__.update(copy.deepcopy(self.draft).__dict__)

    async def chat(self, chat_id: int, *, for_update: bool = False) -> DeskChat | None:
        return self.draft.chats.get(chat_id)

    async def agent_loads(self) -> list[AgentLoad]:
        return list(self.draft.agents)

    async def chat_team(self, chat_id: int) -> str | None:
        return None

    async def assign(self, chat_id: int, staff_id: int | None) -> None:
        name = next((a.name for a in self.draft.agents if a.staff_id == staff_id), None)
        self.draft.chats[chat_id] = replace(
            self.draft.chats[chat_id], assigned_staff_id=staff_id, assigned_name=name
        )

    async def set_status(
        self,
        chat_id: int,
        status: ChatStatus,
        at: datetime,
        *,
        snoozed_until: datetime | None = None,
        resolved_by: int | None = None,
    ) -> None:
        self.draft.chats[chat_id] = replace(
            self.draft.chats[chat_id], status=status, snoozed_until=snoozed_until
        )

    async def add_system_turn(self, chat_id: int, body: str, at: datetime) -> None:
        self.draft.turns.append((chat_id, body))

    async def set_availability(self, staff_id: int, availability: Availability) -> None:
        self.draft.availability[staff_id] = availability

    def record(self, entry: AuditEntry) -> None:
        self.draft.audit.append(entry)

    async def snoozes_over(self, now: datetime, limit: int) -> list[int]:
        return [
            c.chat_id
            for c in self.draft.chats.values()
            if c.status is ChatStatus.SNOOZED and c.snoozed_until is not None and c.snoozed_until <= now
        ][:limit]


def open_chat(status: ChatStatus = ChatStatus.OPEN) -> Desk:
    chat = DeskChat(5, 42, "Ada", "whatsapp", status, None, None, None, NOW)
    return Desk(chats={5: chat})


async def test_assign_to_me_or_to_a_named_agent_is_noted_and_audited_in_one_commit() -> None:
    stored = open_chat()
    chat = await assign_chat(FakeDeskUow(stored), 5, ME, now=NOW)
    assert chat.assigned_name == "Lena Hoffmann"
    chat = await assign_chat(FakeDeskUow(stored), 5, ME, to="jonas@northwind.example", now=NOW)
    assert chat.assigned_staff_id == 8
    assert stored.commits == 2
    assert stored.turns == [(5, "Assigned to Lena Hoffmann."), (5, "Assigned to Jonas Weber.")]
    assert [(a.action, a.target, a.detail) for a in stored.audit] == [
        ("chat.assign", "chat:5", {"staff_id": 7}),
        ("chat.assign", "chat:5", {"staff_id": 8}),
    ]


async def test_an_unknown_agent_or_conversation_is_refused_in_words_and_nothing_is_stored() -> None:
    stored = open_chat()
    with pytest.raises(DeskError, match="no agent “bob”"):
        await assign_chat(FakeDeskUow(stored), 5, ME, to="bob", now=NOW)
    with pytest.raises(ChatNotFound):
        await resolve_chat(FakeDeskUow(stored), 6, ME, now=NOW)
    assert stored.commits == 0 and stored.audit == [] and stored.turns == []


async def test_resolve_then_reopen_and_not_twice() -> None:
    stored = open_chat()
    assert (await resolve_chat(FakeDeskUow(stored), 5, ME, now=NOW)).status is ChatStatus.CLOSED
    with pytest.raises(DeskError, match="already resolved"):
        await resolve_chat(FakeDeskUow(stored), 5, ME, now=NOW)
    with pytest.raises(DeskError, match="reopen it before snoozing"):
        await snooze_chat(FakeDeskUow(stored), 5, ME, until=NOW + timedelta(hours=1), now=NOW)
    assert (await reopen_chat(FakeDeskUow(stored), 5, ME, now=NOW)).status is ChatStatus.OPEN
    with pytest.raises(DeskError, match="not resolved or snoozed"):
        await reopen_chat(FakeDeskUow(stored), 5, ME, now=NOW)
    assert [a.action for a in stored.audit] == ["chat.resolve", "chat.reopen"]


async def test_snooze_needs_a_time_in_the_next_thirty_days() -> None:
    stored = open_chat()
    with pytest.raises(DeskError, match="in the future"):
        await snooze_chat(FakeDeskUow(stored), 5, ME, until=NOW - timedelta(minutes=1), now=NOW)
    with pytest.raises(DeskError, match="30 days at most"):
        await snooze_chat(FakeDeskUow(stored), 5, ME, until=NOW + timedelta(days=31), now=NOW)
    chat = await snooze_chat(FakeDeskUow(stored), 5, ME, until=NOW + timedelta(hours=3), now=NOW)
    assert chat.status is ChatStatus.SNOOZED and chat.snoozed_until == NOW + timedelta(hours=3)
    assert stored.audit[-1].detail == {"until": (NOW + timedelta(hours=3)).isoformat()}


async def test_away_and_back_are_audited() -> None:
    stored = open_chat()
    await set_availability(FakeDeskUow(stored), ME, Availability.AWAY)
    await set_availability(FakeDeskUow(stored), ME, Availability.ONLINE)
    assert stored.availability == {7: Availability.ONLINE}
    assert [(a.action, a.detail) for a in stored.audit] == [
        ("staff.availability", {"availability": "away"}),
        ("staff.availability", {"availability": "online"}),
    ]


async def test_a_snooze_that_is_over_opens_the_conversation_again_without_an_audit_row() -> None:
    stored = open_chat()
    await snooze_chat(FakeDeskUow(stored), 5, ME, until=NOW + timedelta(hours=1), now=NOW)
    assert await wake_snoozed_chats(FakeDeskUow(stored), NOW + timedelta(minutes=59)) == 0
    assert await wake_snoozed_chats(FakeDeskUow(stored), NOW + timedelta(hours=1)) == 1
    assert stored.chats[5].status is ChatStatus.OPEN
    assert stored.turns[-1] == (5, "The snooze is over.")
    assert [a.action for a in stored.audit] == ["chat.snooze"]
