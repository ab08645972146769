"""Campaigns as lists show them: the newest first, and the id behind a campaign's slug."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from domain.campaigns.model import Audience
from storage.campaigns import audience_conditions
from storage.database import Database
from storage.models import BulkMessaging, CommunicationAnalytics, Customer


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


@dataclass(frozen=True)
class CampaignOverview:
    """A campaign as its page shows it: what it sends, to how many, and when it started."""

    id: int
    slug: str
    name: str
    status: str
    category: str
    template_name: str
    channel_order: tuple[str, ...]
    planned_count: int
    excluded_count: int
    created_at: datetime
    scheduled_at: datetime | None
    launched_at: datetime | None
    #: Minutes after which a message not delivered goes on to the next channel; None: no fallback.
    fallback_after_minutes: int | None = None
    #: The values the campaign gives its template, per-language ones under BY_LANGUAGE.
    variables: Mapping[str, Any] = field(default_factory=dict)


def _overview(c: BulkMessaging) -> CampaignOverview:
    return CampaignOverview(
        c.id,
        c.slug,
        c.name,
        c.status,
        c.category,
        c.template_name,
        tuple(str(ch) for ch in c.channel_order),
        c.planned_count,
        c.excluded_count,
        c.created_at,
        c.scheduled_at,
        c.launched_at,
        c.fallback_after_minutes,
        dict(c.variables or {}),
    )


async def campaign_overview(database: Database, slug: str) -> CampaignOverview | None:
    async with database.read_sessions() as session:
        found = await session.scalar(select(BulkMessaging).where(BulkMessaging.slug == slug))
    return None if found is None else _overview(found)


async def campaigns_with_progress(database: Database, limit: int = 100) -> list[tuple[CampaignOverview, int]]:
    """The newest campaigns, newest first, each with how many of its messages a provider took.

    Read from the kept daily figures (`communication_analytics.sent`, where a message is counted once when a
    provider accepts it, and which `switchboard analytics verify` recounts), not by counting the messages.
    """
    async with database.read_sessions() as session:
        campaigns = list(
            await session.scalars(
                select(BulkMessaging).order_by(BulkMessaging.created_at.desc()).limit(limit)
            )
        )
        handed = Counter[int]()
        if campaigns:
            counts = await session.execute(
                select(CommunicationAnalytics.campaign_id, func.sum(CommunicationAnalytics.sent))
                .where(CommunicationAnalytics.campaign_id.in_([c.id for c in campaigns]))
                .group_by(CommunicationAnalytics.campaign_id)
            )
            handed.update({campaign_id: int(n or 0) for campaign_id, n in counts.all()})
    return [(_overview(c), handed[c.id]) for c in campaigns]


async def campaign_slugs(database: Database) -> list[str]:
    """Every campaign's slug, for suggesting the one a mistyped slug meant."""
    async with database.read_sessions() as session:
        return list(await session.scalars(select(BulkMessaging.slug)))


async def newest_campaign_overviews(database: Database, limit: int = 25) -> list[CampaignOverview]:
    """The newest `limit` campaigns, newest first."""
    async with database.read_sessions() as session:
        campaigns = await session.scalars(
            select(BulkMessaging).order_by(BulkMessaging.created_at.desc()).limit(limit)
        )
        return [_overview(c) for c in campaigns]


async def campaign_count(database: Database) -> int:
    """How many campaigns there are, so a list cut short can say of how many."""
    async with database.read_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(BulkMessaging)) or 0)


async def audience_size(database: Database, audience: Audience) -> int:
    """How many customers ``audience`` matches (with its address condition, if it has one); customers whose
    data was erased are not counted: they have no address and must never be asked for one."""
    query = (
        select(func.count())
        .select_from(Customer)
        .where(Customer.erased_at.is_(None), *audience_conditions(audience))
    )
    async with database.read_sessions() as session:
        return int(await session.scalar(query) or 0)
