"""Dashboards as the analytics pages read them: a staff member's saved layout and the latest stored insight."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from storage.database import Database
from storage.models import BusinessIntelligence, DashboardConfig


@dataclass(frozen=True)
class SavedLayout:
    layout: list[Any]  # [{"kind": "kpi", "metric": ...}, ...]
    period: str


async def saved_layout(database: Database, staff_id: int, name: str) -> SavedLayout | None:
    async with database.read_sessions() as session:
        found = await session.scalar(
            select(DashboardConfig).where(DashboardConfig.owner_id == staff_id, DashboardConfig.name == name)
        )
    return None if found is None else SavedLayout(list(found.layout), found.period)


@dataclass(frozen=True)
class StoredInsight:
    """What a daily insight computed last (business_intelligence)."""

    parameters: dict[str, Any]
    result: dict[str, Any]
    summary: str
    computed_at: datetime


async def latest_insight(database: Database, kind: str) -> StoredInsight | None:
    async with database.read_sessions() as session:
        found = await session.scalar(
            select(BusinessIntelligence)
            .where(BusinessIntelligence.kind == kind)
            .order_by(BusinessIntelligence.computed_at.desc(), BusinessIntelligence.id.desc())
            .limit(1)
        )
    if found is None:
        return None
    return StoredInsight(dict(found.parameters), dict(found.result), found.summary, found.computed_at)
