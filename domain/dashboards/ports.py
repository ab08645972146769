"""What saving a dashboard layout needs from storage: the saved layouts and one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Protocol, Self


class DashboardLayouts(Protocol):
    async def save(
        self, owner_id: int, name: str, page: str, layout: Sequence[dict[str, Any]], period: str
    ) -> None:
        """Create or replace the staff member's layout called `name`."""


class DashboardUnitOfWork(Protocol):
    @property
    def layouts(self) -> DashboardLayouts: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...
