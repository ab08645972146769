"""What saving a dashboard layout needs from storage: the saved layouts and one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from domain.transaction import Transaction


class DashboardLayouts(Protocol):
    async def save(
        self, owner_id: int, name: str, page: str, layout: Sequence[dict[str, Any]], period: str
    ) -> None:
        """Create or replace the staff member's layout called `name`."""


class DashboardUnitOfWork(Transaction, Protocol):
    @property
    def layouts(self) -> DashboardLayouts: ...
