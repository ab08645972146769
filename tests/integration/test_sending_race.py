"""Two sends with one request id racing on SQLite and PostgreSQL: one message, one audit entry, one "not duplicate"."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Self

from sqlalchemy import func, select

from domain.consent.model import ConsentPolicy
from domain.delivery.outbox import OutboxEntry
from domain.messages.sending import MessageRequest, SendResult, send_message
from domain.vocabulary import Channel
from storage.database import Database
from storage.messages import SqlMessagingUnitOfWork
from storage.models import AuditLog, Customer, CustomerCommunication

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


class BothLookedUp:
    """Holds each insert until both requests have looked the key up (or briefly, where the engine
    serialises writers and the second cannot even begin until the first commits)."""

    def __init__(self) -> None:
        self.arrived = 0
        self.both = asyncio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived == 2:
            self.both.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.both.wait(), timeout=0.5)


class RacingUnitOfWork(SqlMessagingUnitOfWork):
    def __init__(self, database: Database, gate: BothLookedUp) -> None:
        super().__init__(database)
        self._gate = gate

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        writer, gate = self.outbox_writer, self._gate

        class HeldWriter:
            async def add_many(self, entries: Sequence[OutboxEntry], now: datetime) -> Counter[str]:
                await gate.wait()
                return await writer.add_many(entries, now)

        self.outbox_writer = HeldWriter()  # type: ignore[assignment]
        return self


async def test_racing_sends_with_one_request_id_queue_and_audit_once(database: Database) -> None:
    async with database.sessions() as session:
        customer = Customer(name="Rita Race", phone_e164="+4915100000999", created_at=NOW)
        session.add(customer)
        await session.commit()
        customer_id = customer.id
    request = MessageRequest(customer_id, Channel.SMS, body="Your results are ready.", request_id="api-race")
    gate = BothLookedUp()

    async def send() -> SendResult:
        return await send_message(
            RacingUnitOfWork(database, gate),
            request,
            actor="api",
            via="api",
            now=NOW,
            policy=ConsentPolicy(),
        )

    results: list[Any] = await asyncio.gather(send(), send())

    assert len({r.message_id for r in results}) == 1
    assert sorted(r.duplicate for r in results) == [False, True]
    async with database.sessions() as session:
        messages = await session.scalar(select(func.count()).select_from(CustomerCommunication))
        audits = await session.scalar(select(func.count()).select_from(AuditLog))
    assert (messages, audits) == (1, 1)
