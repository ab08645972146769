"""Campaigns as lists show them: the newest first, and the id behind a campaign's slug."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from storage.database import Database
from storage.models import BulkMessaging


@dataclass(frozen=True)
class CampaignListing:
    slug: str
    name: str
    status: str
    planned: int
    created_at: datetime


async def campaign_id_by_slug(database: Database, slug: str) -> int | None:
    async with database.read_sessions() as session:
        found = await session.scalar(select(BulkMessaging.id).where(BulkMessaging.slug == slug))
    return None if found is None else int(found)


async def newest_campaigns(database: Database, limit: int = 200) -> list[CampaignListing]:
    """The newest `limit` campaigns, newest first."""
    query = (
        select(
            BulkMessaging.slug,
            BulkMessaging.name,
            BulkMessaging.status,
            BulkMessaging.planned_count,
            BulkMessaging.created_at,
        )
        .order_by(BulkMessaging.created_at.desc())
        .limit(limit)
    )
    async with database.read_sessions() as session:
        rows = (await session.execute(query)).all()
    return [CampaignListing(r.slug, r.name, r.status, r.planned_count, r.created_at) for r in rows]
