"""A staff reply in a live chat with fakes: the message, its audit row and its turn commit together or not at all."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import pytest

from domain.audit import AuditEntry
from domain.consent.model import ConsentPolicy
from domain.conversations.model import ChatNotFound, ChatReplyTarget
from domain.conversations.use_cases import reply_in_chat
from domain.delivery.outbox import OutboxEntry
from domain.messages.model import Recipient, StoredTemplate
from domain.messages.sending import MessageRequestError
from domain.vocabulary import Channel, MessageStatus

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday morning: no quiet hours
CHAT = ChatReplyTarget(chat_id=5, customer_id=7, channel="telegram", subject=None, customer_name="Ada")
ADA = Recipient(customer_id=7, name="Ada", locale="en", timezone="UTC", addresses={Channel.TELEGRAM: "4242"})


@dataclass
class Stored:
    """What the fakes hold, committed or not."""

    messages: dict[str, tuple[int, str, str | None]] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    turns: list[tuple[int, int, int, str]] = field(default_factory=list)
    commits: int = 0


class FakeChatReplyUow:
    """Works on a copy of what is stored and writes it back on commit, so leaving without commit forgets."""

    def __init__(self, stored: Stored, *, fail_adding_the_turn: bool = False) -> None:
        self.stored = stored
        self.fail_adding_the_turn = fail_adding_the_turn

    async def __aenter__(self) -> Self:
        self.draft = copy.deepcopy(self.stored)
        self.recipients = self.templates = self.outbox_writer = self.messages = self.audit = self.chats = self
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass

    async def commit(self) -> None:
        self.draft.commits += 1
        self.stored.__dict__.update(copy.deepcopy(self.draft).__dict__)

    async def by_ids(self, ids: Sequence[int], *, channels: Any, now: datetime) -> list[Recipient]:
        return [ADA] if ADA.customer_id in ids else []

    async def variants(self, name: str) -> list[StoredTemplate]:
        return []

    async def add_many(self, entries: Sequence[OutboxEntry], now: datetime) -> dict[str, int]:
        for entry in entries:
            self.draft.messages[entry.idempotency_key] = (
                len(self.draft.messages) + 100,
                entry.status.value,
                entry.status_reason,
            )
        return {"added": len(entries)}

    async def by_idempotency_key(self, key: str) -> tuple[int, str, str | None] | None:
        return self.draft.messages.get(key)

    def record(self, entry: AuditEntry) -> None:
        self.draft.audit.append(entry)

    async def reply_target(self, chat_id: int) -> ChatReplyTarget | None:
        return CHAT if chat_id == CHAT.chat_id else None

    async def add_staff_turn(
        self,
        chat_id: int,
        staff_id: int,
        communication_id: int,
        body: str,
        at: datetime,
        *,
        external_ref: str | None = None,
        mirrored: bool = False,
    ) -> bool:
        if self.fail_adding_the_turn:
            raise RuntimeError("the database went away")
        self.draft.turns.append((chat_id, staff_id, communication_id, body))
        return True


async def reply(
    uow: FakeChatReplyUow, chat_id: int = 5, body: str = "See you at 10:30.", key: str = "k1"
) -> Any:
    return await reply_in_chat(
        uow,
        chat_id,
        staff_id=3,
        staff_email="agent@northwind.example",
        body=body,
        request_key=key,
        business_name="Northwind",
        now=NOW,
        policy=ConsentPolicy(),
    )


async def test_a_reply_queues_the_message_audits_it_and_joins_the_chat_in_one_commit() -> None:
    stored = Stored()
    result = await reply(FakeChatReplyUow(stored))
    assert result.status is MessageStatus.PLANNED and not result.duplicate
    assert stored.commits == 1
    assert list(stored.messages.values()) == [(result.message_id, "planned", None)]
    assert [(a.action, a.target, a.via) for a in stored.audit] == [("message.send", "customer:7", "web")]
    assert stored.turns == [(5, 3, result.message_id, "See you at 10:30.")]


async def test_a_failure_after_queueing_commits_nothing() -> None:
    stored = Stored()
    with pytest.raises(RuntimeError):
        await reply(FakeChatReplyUow(stored, fail_adding_the_turn=True))
    assert stored == Stored(), "the message and its audit row were kept without the chat turn"


async def test_the_same_form_sent_twice_queues_and_adds_one_reply() -> None:
    stored = Stored()
    first = await reply(FakeChatReplyUow(stored))
    again = await reply(FakeChatReplyUow(stored))
    assert again.duplicate and again.message_id == first.message_id
    assert len(stored.messages) == 1 and len(stored.audit) == 1 and len(stored.turns) == 1


async def test_no_chat_and_an_empty_reply_are_refused_before_anything_is_stored() -> None:
    stored = Stored()
    with pytest.raises(ChatNotFound):
        await reply(FakeChatReplyUow(stored), chat_id=6)
    with pytest.raises(MessageRequestError, match="empty"):
        await reply(FakeChatReplyUow(stored), body=" ")
    assert stored == Stored()


async def test_the_route_is_decided_on_the_route_unit_of_work_before_the_write_one_opens() -> None:
    """The route's preview may wait for a render thread; it must not hold the write transaction."""
    stored = Stored()
    opened: list[str] = []

    class Recording(FakeChatReplyUow):
        def __init__(self, name: str) -> None:
            super().__init__(stored)
            self.name = name

        async def __aenter__(self) -> Self:
            opened.append(self.name)
            return await super().__aenter__()

        async def by_ids(self, ids: Sequence[int], *, channels: Any, now: datetime) -> list[Recipient]:
            opened.append(f"{self.name} reads the recipient")
            return await super().by_ids(ids, channels=channels, now=now)

    result = await reply_in_chat(
        Recording("write"),
        5,
        staff_id=3,
        staff_email="agent@northwind.example",
        body="See you at 10:30.",
        request_key="k1",
        business_name="Northwind",
        now=NOW,
        policy=ConsentPolicy(),
        route_uow=Recording("route"),
    )
    assert opened[:2] == ["route", "route reads the recipient"]
    assert opened.index("write") > 1
    assert stored.commits == 1 and result.message_id is not None
