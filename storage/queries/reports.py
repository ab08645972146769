"""What questions about the figures may name: the clinics, services, campaigns, templates, staff,
segments and countries in the database, as (value, name) pairs per report dimension."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from storage.analytics.facts import NO_VALUE
from storage.database import Database
from storage.models import BulkMessaging, Customer, Location, MessageTemplate, Service, StaffUser

#: Each dimension's stored value and the name people know it by (one column when they are the same).
_NAMED_BY = {
    "location": (Location.code, Location.name),
    "service": (Service.code, Service.name),
    "campaign": (BulkMessaging.slug, BulkMessaging.name),
    "template": (MessageTemplate.name, MessageTemplate.name),
    "staff": (StaffUser.name, StaffUser.name),
    "segment": (Customer.segment, Customer.segment),
    "country": (Customer.country, Customer.country),
}


async def dimension_names(database: Database, *, limit: int = 500) -> dict[str, list[tuple[str, str]]]:
    """Up to `limit` distinct (value, name) pairs per dimension; rows without a value are left out."""
    found: dict[str, list[tuple[str, str]]] = {}
    async with database.read_sessions() as session:
        for dimension, (value_column, name_column) in _NAMED_BY.items():
            # Labelled, because a value and its name may be one column (staff are named by name).
            rows = (
                await session.execute(
                    select(value_column.label("value"), name_column.label("name")).distinct().limit(limit)
                )
            ).all()
            found[dimension] = [(str(v), str(n)) for v, n in rows if v]
    return found


#: The attribution row of orders whose last message was not a campaign's, in words.
NO_CAMPAIGN = "No campaign (single messages and notifications)"


async def campaign_names(database: Database, slugs: Iterable[str]) -> dict[str, str]:
    """What to call each of these attribution keys: a campaign's name by its slug, the row of messages that
    were no campaign's in words (a slug whose campaign is gone keeps the slug)."""
    wanted = sorted(set(slugs) - {NO_VALUE})
    named = {NO_VALUE: NO_CAMPAIGN}
    if not wanted:
        return named
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                select(BulkMessaging.slug, BulkMessaging.name).where(BulkMessaging.slug.in_(wanted))
            )
        ).all()
    return named | {str(slug): str(name) for slug, name in rows}
