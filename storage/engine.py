"""Builds the async engine for SQLite (embedded default) or PostgreSQL (scale-out) with the right pragmas."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession


def create_engine(
    database_url: str, *, read_only: bool = False, transaction_pooling: bool = False, **options: Any
) -> AsyncEngine:
    """An engine for `database_url`; SQLite gets WAL, foreign keys and a busy timeout on every connection.

    On SQLite, write transactions start with BEGIN IMMEDIATE so that a read-then-write transaction
    takes the write lock up front and waits for it, instead of failing with "database is locked"
    when it tries to upgrade; `read_only=True` builds the engine for queries (deferred BEGIN, so
    dashboards and KPI answers never queue behind writers in WAL mode).

    `transaction_pooling`: PostgreSQL is reached through a pooler in transaction mode (PgBouncer), which
    may run each transaction on another server connection. asyncpg then keeps no statement cache and
    prepares every statement unnamed: PostgreSQL keeps one unnamed statement per connection and replaces it
    with the next, so no name meets one another client left on a server connection, and none pile up.
    (SQLAlchemy's recipe names them uniquely instead, which leaves one behind on a server connection for
    most transactions, measured at 212 per connection after 600 transactions, until PgBouncer recycles it.)
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        options.setdefault("connect_args", {"timeout": 30})
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(
            engine.sync_engine, "begin", _sqlite_begin_deferred if read_only else _sqlite_begin_immediate
        )
        return engine
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 10)
    options.setdefault("pool_pre_ping", True)
    if transaction_pooling:
        options["connect_args"] = {
            **options.get("connect_args", {}),
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": _unnamed_statement,
        }
    return create_async_engine(url, **options)


def _unnamed_statement() -> str:
    """asyncpg prepares a statement named "" as PostgreSQL's unnamed statement."""
    return ""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # A 64 MB page cache keeps the outbox indexes in memory while campaigns are planned in bulk.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()
    # SQLite's own lower() folds A-Z only; searches fold with Python's, as PostgreSQL's lower() does
    # (storage.sql.folded). A function of its own, so nothing else calls into Python for every row.
    dbapi_connection.create_function("unicode_lower", 1, _lower, deterministic=True)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _sqlite_begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_begin_deferred(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
