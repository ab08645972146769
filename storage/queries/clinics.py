"""The business's clinics (locations) as pages offer them to choose from."""

from __future__ import annotations

from sqlalchemy import select

from storage.database import Database
from storage.models import Location


async def clinics(database: Database) -> list[tuple[int, str, str]]:
    """Every clinic as (id, code, name), by name: what a key (or a policy) may belong to."""
    async with database.read_sessions() as session:
        rows = await session.execute(
            select(Location.id, Location.code, Location.name).order_by(Location.name)
        )
        return [(row.id, row.code, row.name) for row in rows]
