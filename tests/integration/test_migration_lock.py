"""`switchboard migrate` run by several units at once takes turns; a lock held too long is named, not waited
on for ever."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from storage.migrate import MIGRATION_LOCK_KEY, MigrationLockBusy, migration_lock
from tests.conftest import FreshDatabases

pytestmark = pytest.mark.postgres


def test_a_held_lock_is_named_after_the_wait(fresh_databases: FreshDatabases) -> None:
    asyncio.run(held_then_released(fresh_databases.url("postgresql")))


async def held_then_released(url: str) -> None:
    holder = create_async_engine(url, poolclass=NullPool)
    try:
        async with holder.connect() as held:
            await held.execute(select(func.pg_advisory_lock(MIGRATION_LOCK_KEY)))
            with pytest.raises(MigrationLockBusy, match="held the migration lock for over 2 s"):
                async with migration_lock(url, wait_seconds=2):
                    pytest.fail("the lock was taken while another session held it")
        # Released with the holder's session: the next migrate goes ahead at once.
        async with asyncio.timeout(10), migration_lock(url, wait_seconds=2):
            pass
    finally:
        await holder.dispose()
