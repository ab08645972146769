"""Saved dashboard layouts, and the unit of work the layout use-case commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DashboardConfig
from storage.unit_of_work import SqlUnitOfWork


class SqlDashboardLayouts:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def save(
        self, owner_id: int, name: str, page: str, layout: Sequence[dict[str, Any]], period: str
    ) -> None:
        config = await self._session.scalar(
            select(DashboardConfig).where(DashboardConfig.owner_id == owner_id, DashboardConfig.name == name)
        )
        if config is None:
            config = DashboardConfig(owner_id=owner_id, name=name, page=page)
            self._session.add(config)
        config.layout = list(layout)
        config.period = period


class SqlDashboardUnitOfWork(SqlUnitOfWork):
    """Satisfies domain.dashboards.ports.DashboardUnitOfWork."""

    layouts: SqlDashboardLayouts

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.layouts = SqlDashboardLayouts(self.session)
        return self
