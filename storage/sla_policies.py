"""SLA policies as admins write them (domain.conversations.sla_policies); nothing here commits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.conversations.sla import PolicyError
from storage.models import Location
from storage.models import SlaPolicy as SlaPolicyRow
from storage.unit_of_work import SqlUnitOfWork


class SqlSlaPolicies:
    """domain.conversations.sla_policies.SlaPolicyStore."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def location_id(self, code: str) -> int | None:
        found: int | None = await self._session.scalar(select(Location.id).where(Location.code == code))
        return found

    async def taken_by(self, name: str, location_id: int | None) -> tuple[int | None, int | None]:
        named = await self._session.scalar(select(SlaPolicyRow.id).where(SlaPolicyRow.name == name))
        holding = None
        if location_id is not None:
            holding = await self._session.scalar(
                select(SlaPolicyRow.id).where(SlaPolicyRow.location_id == location_id)
            )
        return named, holding

    async def exists(self, policy_id: int) -> bool:
        return (
            await self._session.scalar(select(SlaPolicyRow.id).where(SlaPolicyRow.id == policy_id))
            is not None
        )

    async def enabled_default(self) -> tuple[int, str] | None:
        row = (
            await self._session.execute(
                select(SlaPolicyRow.id, SlaPolicyRow.name)
                .where(SlaPolicyRow.location_id.is_(None), SlaPolicyRow.enabled.is_(True))
                .order_by(SlaPolicyRow.name)
                .limit(1)
            )
        ).first()
        return None if row is None else (row.id, row.name)

    async def add(self, values: Mapping[str, Any], location_id: int | None, at: datetime) -> int:
        row = SlaPolicyRow(**values, location_id=location_id, created_at=at)
        try:
            async with self._session.begin_nested():
                self._session.add(row)
                await self._session.flush()
        except IntegrityError:
            raise PolicyError(TAKEN) from None
        return row.id

    async def update(self, policy_id: int, values: Mapping[str, Any], location_id: int | None) -> bool:
        try:
            async with self._session.begin_nested():
                changed = await self._session.execute(
                    update(SlaPolicyRow)
                    .where(SlaPolicyRow.id == policy_id)
                    .values(**values, location_id=location_id)
                )
        except IntegrityError:
            raise PolicyError(TAKEN) from None
        return bool(getattr(changed, "rowcount", 0))


#: Two admins saving at once past the checks: the database's unique name and clinic keep them apart.
TAKEN = "Someone saved a policy with that name or for that clinic just now: look at the list again."


class SqlSlaPolicyUnitOfWork(SqlUnitOfWork):
    """Satisfies domain.conversations.sla_policies.SlaPolicyUnitOfWork."""

    sla_policies: SqlSlaPolicies

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.sla_policies = SqlSlaPolicies(self.session)
        return self
