"""Upgrades and downgrades a database with Alembic, and tells whether a database is at head."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func as sql
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
#: The PostgreSQL advisory lock every `switchboard migrate` holds while it upgrades (see `migration_lock`).
MIGRATION_LOCK_KEY = 0x5B_0002


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def is_newer_than_this_release(revision: str | None) -> bool:
    """Whether the database is at a revision this release does not know: a newer release migrated it (a rolling
    upgrade under way). Its migrations are safe with this code running (docs/operations.md), so this release
    may go on serving; it must not try to upgrade or refuse to start."""
    if revision is None:
        return False
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    try:
        return scripts.get_revision(revision) is None
    except Exception:  # alembic: "No such revision or branch"
        return True


async def upgrade(database_url: str, revision: str = "head") -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), revision)


async def downgrade(database_url: str, revision: str = "base") -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


@asynccontextmanager
async def migration_lock(database_url: str, wait_seconds: float = 600.0) -> AsyncIterator[None]:
    """One upgrade at a time. Every web and worker unit runs `switchboard migrate` before it starts
    (deploy/systemd), so several start together on one PostgreSQL database: the first upgrades, the others
    wait here on a session advisory lock and then find the schema at head. SQLite needs none (one process
    upgrades it, and its own write lock orders the rest)."""
    if not database_url.startswith("postgresql"):
        yield
        return
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            waited = 0.0
            while not (
                await connection.execute(select(sql.pg_try_advisory_lock(MIGRATION_LOCK_KEY)))
            ).scalar():
                await connection.commit()
                if waited >= wait_seconds:
                    raise MigrationLockBusy(
                        f"another `switchboard migrate` has held the migration lock for over {wait_seconds:g} s; "
                        "if none is running, a stuck session holds it: see pg_locks where locktype = 'advisory'"
                    )
                if waited in (0.0, 30.0):
                    log.warning("waiting for another `switchboard migrate` to finish")
                await asyncio.sleep(1.0)
                waited += 1.0
            await connection.commit()
            try:
                yield
            finally:
                # Closing the connection (below) would release the lock anyway; an error here must not
                # hide the migration's own.
                with suppress(Exception):
                    await connection.execute(select(sql.pg_advisory_unlock(MIGRATION_LOCK_KEY)))
                    await connection.commit()
    finally:
        await engine.dispose()


class MigrationLockBusy(RuntimeError):
    """Another migration holds the lock for too long; the message says what to look at."""
