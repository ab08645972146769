"""Communication preferences storage: one row per customer, replaced whole, and the unit of work it is set in."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from domain.consent.preferences import CommunicationPreferences
from storage.models import CommunicationPreference, Customer
from storage.unit_of_work import SqlUnitOfWork


class SqlPreferenceBook:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def customer_exists(self, customer_id: int) -> bool:
        return await self._session.get(Customer, customer_id) is not None

    async def set(self, customer_id: int, preferences: CommunicationPreferences, at: datetime) -> None:
        row = await self._session.get(CommunicationPreference, customer_id)
        if row is None:
            row = CommunicationPreference(customer_id=customer_id)
            self._session.add(row)
        channel = preferences.preferred_channel
        row.preferred_channel = channel.value if channel is not None else None
        row.quiet_hours_start, row.quiet_hours_end = (
            preferences.quiet_hours_start,
            preferences.quiet_hours_end,
        )
        row.marketing_max_per_week = preferences.marketing_max_per_week
        row.updated_at = at


class SqlPreferencesUnitOfWork(SqlUnitOfWork):
    """The unit of work setting preferences takes: the preference book and the audit trail."""

    preferences: SqlPreferenceBook

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.preferences = SqlPreferenceBook(self.session)
        return self
