"""What the worker processes of a running installation say of themselves: shared by the fault suite and the
deployment topology test."""

from __future__ import annotations

from sqlalchemy import select

from storage.database import Database
from storage.models import WorkerHeartbeat


async def heartbeat_pids(url: str) -> set[int]:
    """The processes whose worker loops have written a heartbeat."""
    database = Database.connect(url)
    try:
        async with database.read_sessions() as session:
            details = (await session.scalars(select(WorkerHeartbeat.detail))).all()
    finally:
        await database.dispose()
    return {int(detail["pid"]) for detail in details if detail and "pid" in detail}
