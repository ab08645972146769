"""The storage the consent use-cases need beyond the ledger (ledger.py), as Protocols storage/ implements."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from domain.audit import AuditTrail
from domain.consent.preferences import CommunicationPreferences


class PreferenceBook(Protocol):
    async def customer_exists(self, customer_id: int) -> bool: ...

    async def set(self, customer_id: int, preferences: CommunicationPreferences, at: datetime) -> None:
        """Replace the customer's preferences (every field, None included)."""


class PreferencesUnitOfWork(Protocol):
    @property
    def preferences(self) -> PreferenceBook: ...

    @property
    def audit(self) -> AuditTrail: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...
