"""Reading messages: lookups by idempotency key, customer timelines and a message's status history."""

from __future__ import annotations

from typing import Self

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.campaigns import SqlCampaignUnitOfWork
from storage.models import CustomerCommunication


class SqlMessageLookup:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def by_idempotency_key(self, key: str) -> tuple[int, str, str | None] | None:
        row = (
            await self._session.execute(
                select(
                    CustomerCommunication.id,
                    CustomerCommunication.status,
                    CustomerCommunication.status_reason,
                ).where(CustomerCommunication.idempotency_key == key)
            )
        ).first()
        return (row.id, row.status, row.status_reason) if row else None


class SqlMessagingUnitOfWork(SqlCampaignUnitOfWork):
    """The unit of work for sending single messages: the campaign repositories plus message lookups."""

    messages: SqlMessageLookup

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.messages = SqlMessageLookup(self.session)
        return self
