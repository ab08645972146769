"""Small SQL helpers shared by the repositories: typed table access and dialect-aware upserts."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def table_of(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def dialect_of(session: AsyncSession | AsyncConnection) -> str:
    if isinstance(session, AsyncConnection):
        return session.dialect.name
    return session.get_bind().dialect.name


def insert_for(session: AsyncSession | AsyncConnection, table: Table) -> Any:
    """An INSERT that supports ON CONFLICT on the session's engine (SQLite and PostgreSQL share the API)."""
    return postgresql.insert(table) if dialect_of(session) == "postgresql" else sqlite.insert(table)
