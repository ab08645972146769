"""Business events as the notification rule form offers them: the event types that have arrived lately."""

from __future__ import annotations

from sqlalchemy import Subquery, select

from storage.database import Database
from storage.models import BusinessEvent

#: How many of the newest events are read for their types: enough to see every type a business sends daily,
#: few enough to read at once however long the table grows.
RECENT_EVENTS = 5000


def _newest_events() -> Subquery:
    """The newest RECENT_EVENTS events' ids and types: a backward read of the primary key, bounded."""
    return (
        select(BusinessEvent.id, BusinessEvent.event_type)
        .order_by(BusinessEvent.id.desc())
        .limit(RECENT_EVENTS)
        .subquery()
    )


async def recent_event_types(database: Database) -> list[str]:
    """The event types among the newest events, by name: what a new rule is likely to be for."""
    newest = _newest_events()
    async with database.read_sessions() as session:
        found = await session.scalars(select(newest.c.event_type).distinct())
        return sorted(found)


async def recent_events_carry(
    database: Database, event_type: str, field: str, sample: int = 50
) -> bool | None:
    """Whether the newest events of `event_type` (up to `sample`, among the newest RECENT_EVENTS) have `field`
    in their payload: True if any does, False if none does, None when none has arrived lately."""
    newest = _newest_events()
    query = (
        select(BusinessEvent.payload)
        .where(BusinessEvent.id.in_(select(newest.c.id)), BusinessEvent.event_type == event_type)
        .order_by(BusinessEvent.id.desc())
        .limit(sample)
    )
    async with database.read_sessions() as session:
        payloads = list(await session.scalars(query))
    if not payloads:
        return None
    return any(isinstance(p, dict) and field in p for p in payloads)
