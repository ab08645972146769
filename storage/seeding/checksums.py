"""Content fingerprints per table, to prove two seed runs (on any engine) wrote exactly the same rows."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, String, select

from storage.database import Database
from storage.models import Base


def canonical(value: Any) -> Any:
    """A JSON-safe form that is the same whichever engine returned the value."""
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, Decimal):
        return str(value)
    return value


async def content_checksums(database: Database) -> dict[str, tuple[int, str]]:
    """Per table: the row count and a SHA-256 over its rows in primary-key order."""
    sums: dict[str, tuple[int, str]] = {}
    postgres = database.dialect == "postgresql"
    async with database.read_engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            order: list[ColumnElement[Any]] = [
                # PostgreSQL sorts text by locale (ignoring hyphens); byte order matches SQLite.
                column.collate("C") if postgres and isinstance(column.type, String) else column
                for column in table.primary_key.columns
            ]
            digest = hashlib.sha256()
            count = 0
            result = await connection.stream(select(table).order_by(*order))
            async for rows in result.partitions(5000):
                for row in rows:
                    line = json.dumps([canonical(v) for v in row], sort_keys=True, ensure_ascii=False)
                    digest.update(line.encode())
                    digest.update(b"\n")
                    count += 1
            sums[table.name] = (count, digest.hexdigest())
    return sums
