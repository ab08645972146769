"""One handle on the database: the engines and session factories for writes and for read-only queries."""

from __future__ import annotations

import asyncio
import weakref
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.engine import create_engine, create_session_factory


@dataclass
class Database:
    """The write engine and, on SQLite, a separate read engine whose transactions never take the write lock."""

    url: str
    engine: AsyncEngine
    read_engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    replica_engine: AsyncEngine | None = field(default=None, repr=False)
    _replica_sessions: async_sessionmaker[AsyncSession] | None = field(default=None, repr=False)
    _write_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False
    )

    @classmethod
    def connect(
        cls, url: str, *, read_url: str | None = None, transaction_pooling: bool = False, **options: Any
    ) -> Database:
        """`read_url`: a PostgreSQL read replica for `analytics_sessions` (SWITCHBOARD_DATABASE_READ_URL).
        `transaction_pooling`: both are reached through PgBouncer in transaction mode
        (SWITCHBOARD_DATABASE_TRANSACTION_POOLING)."""
        if transaction_pooling and not url.startswith("sqlite"):
            options["transaction_pooling"] = True
        engine = create_engine(url, **options)
        read_engine = (
            create_engine(url, read_only=True, **options) if engine.dialect.name == "sqlite" else engine
        )
        replica = create_engine(read_url, **options) if read_url else None
        return cls(
            url,
            engine,
            read_engine,
            create_session_factory(engine),
            create_session_factory(read_engine),
            replica,
            create_session_factory(replica) if replica is not None else None,
        )

    @property
    def analytics_sessions(self) -> async_sessionmaker[AsyncSession]:
        """Reads that may lag behind the writes by a replica's delay: KPI answers and the dashboards' figures
        (rollups, kept customer days, insights). The read replica when there is one, else `read_sessions`.

        Everything that must see what was just written (the outbox, webhooks, the rollup job's bookkeeping,
        a page drawn after a form) keeps to `sessions` and `read_sessions`.
        """
        return self._replica_sessions or self.read_sessions

    def write_turn(self) -> AbstractAsyncContextManager[None]:
        """On SQLite, one write transaction at a time in this process, queued fairly in asyncio.

        SQLite allows one writer; when many transactions wait for its lock inside the driver, SQLite's
        busy handler sleeps in growing steps and latency explodes. Queuing here instead hands the lock
        straight to the next writer. PostgreSQL needs no turn-taking.
        """
        if self.dialect != "sqlite":
            return nullcontext()
        loop = asyncio.get_running_loop()
        lock = self._write_locks.get(loop)
        if lock is None:
            lock = self._write_locks[loop] = asyncio.Lock()
        return lock

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def ping(self) -> None:
        async with self.read_engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
        if self.replica_engine is not None:
            await self.replica_engine.dispose()


#: PostgreSQL states where the same transaction, run again, may well succeed.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})  # deadlock, serialization failure, lock timeout


def is_transient(error: BaseException) -> bool:
    """Whether a database error is a passing conflict (a deadlock, a busy SQLite file) worth one more try."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if state in TRANSIENT_SQLSTATES:
            return True
        text = str(current).lower()
        if current.__class__.__name__ == "OperationalError" and ("locked" in text or "busy" in text):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False
