"""The storage the consent use-cases need beyond the ledger (ledger.py), as Protocols storage/ implements."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from domain.audit import AuditTrail
from domain.consent.preferences import CommunicationPreferences
from domain.transaction import Transaction


class PreferenceBook(Protocol):
    async def customer_exists(self, customer_id: int) -> bool: ...

    async def set(self, customer_id: int, preferences: CommunicationPreferences, at: datetime) -> None:
        """Replace the customer's preferences (every field, None included)."""


class PreferencesUnitOfWork(Transaction, Protocol):
    @property
    def preferences(self) -> PreferenceBook: ...

    @property
    def audit(self) -> AuditTrail: ...
