"""The bulk outbox insert that campaign planning, fallbacks and notifications share.

Rows go in with ON CONFLICT (idempotency_key) DO NOTHING, so planning a batch twice adds nothing, and
the counts returned are those of rows actually inserted. On SQLite the rows are bound below
SQLAlchemy's per-row parameter handling: tuples already in the driver's form (timestamps as SQLite
text, payloads as JSON text, each distinct value converted once) go to one ``executemany`` per status,
whose rowcount leaves out skipped rows. On PostgreSQL each column goes as one array to a single
``INSERT ... SELECT FROM unnest(...) ... RETURNING status``: one set-based statement per batch. The
table is partitioned there, so the statement writes the batch's keys to the key table itself, set-based,
instead of leaving it to the key trigger row by row (storage/partitions.py).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from domain.delivery.outbox import OutboxEntry
from domain.vocabulary import (
    PROVIDER_FOR_CHANNEL,
    Channel,
    Direction,
    MessageCategory,
    MessageSource,
    MessageStatus,
)
from storage.models import CustomerCommunication
from storage.models.base import postgres_timestamp, sqlite_timestamp, utcnow
from storage.partitions import keys_written_here
from storage.sql import dialect_of, table_of

OUTBOX = table_of(CustomerCommunication)

#: The columns a planned or suppressed row sets; the rest keep their defaults (NULL).
COLUMNS = (
    "customer_id",
    "channel",
    "provider",
    "direction",
    "source",
    "source_ref",
    "category",
    "idempotency_key",
    "template_id",
    "campaign_id",
    "to_address",
    "subject",
    "body",
    "payload",
    "status",
    "status_reason",
    "next_attempt_at",
    "segments",
    "encoding",
    "cost_micros",
    "currency",
    "attempts",
    "created_at",
)
#: Rows per multi-row INSERT on SQLite (x 23 columns stays well under SQLite's 32,766 variables).
ROWS_PER_STATEMENT = 400


def sqlite_insert(rows: int = 1) -> str:
    """INSERT of ``rows`` rows in one statement: SQLite then runs the whole group with the GIL released,
    where a row-by-row executemany hands the GIL back and forth for every row."""
    values = f"({', '.join('?' for _ in COLUMNS)})"
    return (
        f"INSERT INTO {OUTBOX.name} ({', '.join(COLUMNS)}) VALUES {', '.join([values] * rows)} "
        "ON CONFLICT (idempotency_key) DO NOTHING"
    )


_SQLITE_GROUP_INSERT = sqlite_insert(ROWS_PER_STATEMENT)

#: Each column's PostgreSQL type, for the arrays the batch insert unnests.
_POSTGRES_TYPES = {
    "customer_id": "bigint",
    "template_id": "bigint",
    "campaign_id": "bigint",
    "cost_micros": "bigint",
    "segments": "smallint",
    "attempts": "smallint",
    "next_attempt_at": "timestamptz",
    "created_at": "timestamptz",
}
_GIVEN = ", ".join(COLUMNS)
POSTGRES_INSERT = (
    # The batch's keys go into the key table in one set-based statement, and only the rows whose key was
    # new go in (the first of any key given twice), in the batch's order. The statement runs with the key
    # trigger off (storage.partitions.keys_written_here): it writes the keys itself.
    "WITH given AS (SELECT * FROM unnest("
    + ", ".join(f"${n}::{_POSTGRES_TYPES.get(c, 'text')}[]" for n, c in enumerate(COLUMNS, start=1))
    + f") WITH ORDINALITY AS given({_GIVEN}, n)), "
    "fresh AS (INSERT INTO communication_idempotency_keys (idempotency_key, created_at) "
    "SELECT idempotency_key, created_at FROM given ON CONFLICT DO NOTHING RETURNING idempotency_key), "
    "picked AS (SELECT given.*, row_number() OVER (PARTITION BY idempotency_key ORDER BY n) AS nth "
    "FROM given JOIN fresh USING (idempotency_key)) "
    f"INSERT INTO {OUTBOX.name} ({_GIVEN}) "
    f"SELECT {', '.join('payload::jsonb' if c == 'payload' else c for c in COLUMNS)} FROM picked "
    "WHERE nth = 1 ORDER BY n RETURNING status"
)

#: Enum member -> stored text, looked up per row instead of the slower ``.value`` descriptor.
_TEXT: dict[object, str] = {
    m: m.value for e in (Channel, MessageSource, MessageCategory, MessageStatus) for m in e
}
_PROVIDER_TEXT: dict[Channel, str] = {c: p.value for c, p in PROVIDER_FOR_CHANNEL.items()}


def driver_records(
    entries: Sequence[OutboxEntry], now: datetime, stamp: Callable[[datetime], Any]
) -> dict[str, list[tuple[Any, ...]]]:
    """Driver-ready rows for ``entries`` in COLUMNS order, grouped by stored status; ``stamp`` puts a
    timestamp in the driver's form (SQLite text, or an aware datetime for asyncpg)."""
    text, providers = _TEXT, _PROVIDER_TEXT
    outbound, planned = Direction.OUTBOUND.value, MessageStatus.PLANNED
    created = stamp(now)
    moments: dict[datetime | None, Any] = {None: created, now: created}
    payloads: dict[int, str | None] = {}
    groups: dict[str, list[tuple[Any, ...]]] = {}
    for e in entries:
        send_at = e.send_at
        moment = moments.get(send_at)
        if moment is None and send_at is not None:
            moment = moments[send_at] = stamp(send_at)
        payload = e.payload
        # Entries sharing a rendering share one payload dict: it is encoded once, as the JSON column would.
        encoded = payloads.get(id(payload), "") if payload else None
        if encoded == "":
            encoded = payloads[id(payload)] = json.dumps(payload)
        status = text[e.status]
        record = (
            e.customer_id,
            text[e.channel],
            providers[e.channel],
            outbound,
            text[e.source],
            e.source_ref,
            text[e.category],
            e.idempotency_key,
            e.template_id,
            e.campaign_id,
            e.to_address,
            e.subject[:255] if e.subject else e.subject,  # the column's limit; a subject is never that long
            e.body,
            encoded,
            status,
            e.status_reason,
            moment if e.status is planned else None,
            e.segments,
            e.encoding,
            e.cost_micros,
            e.currency,
            0,
            created,
        )
        group = groups.get(status)
        if group is None:
            group = groups[status] = []
        group.append(record)
    return groups


async def insert_outbox_entries(
    session: AsyncSession, entries: Sequence[OutboxEntry], now: datetime | None = None
) -> Counter[str]:
    """Insert with ON CONFLICT (idempotency_key) DO NOTHING; the statuses of the rows actually inserted."""
    if not entries:
        return Counter()
    now = now or utcnow()
    connection = await session.connection()
    inserted: Counter[str] = Counter()
    if dialect_of(session) == "postgresql":
        # One set-based statement per batch: every column travels as one array (asyncpg's binary codec),
        # 23 parameters in all, so going through SQLAlchemy (which begins the transaction) costs nothing.
        for records in driver_records(entries, now, postgres_timestamp).values():
            inserted.update(await postgres_insert_records(connection, records))
        return inserted
    # Straight to aiosqlite, inside the transaction the session has begun (SQLite writers BEGIN IMMEDIATE
    # on connect): SQLAlchemy's per-row parameter handling would cost more than SQLite's own work.
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    for status, records in driver_records(entries, now, sqlite_timestamp).items():
        inserted[status] = await sqlite_insert_records(driver, records)
    return inserted


async def postgres_insert_records(
    connection: AsyncConnection, records: Sequence[tuple[Any, ...]]
) -> list[str]:
    """Inserts ``records`` (COLUMNS order) in one set-based statement; the statuses of the new rows."""
    columns = tuple(list(values) for values in zip(*records, strict=True))
    async with keys_written_here(connection):
        result = await connection.exec_driver_sql(POSTGRES_INSERT, columns)
        return [row[0] for row in result.all()]


async def sqlite_insert_records(driver: Any, records: Sequence[tuple[Any, ...]]) -> int:
    """Inserts ``records`` in multi-row statements; how many were new (rowcount skips conflicts)."""
    size = ROWS_PER_STATEMENT
    whole = len(records) - len(records) % size
    groups = [
        tuple(value for record in records[start : start + size] for value in record)
        for start in range(0, whole, size)
    ]
    count = 0
    if groups:
        cursor = await driver.executemany(_SQLITE_GROUP_INSERT, groups)
        count += max(int(cursor.rowcount or 0), 0)
        await cursor.close()
    if whole < len(records):
        rest = records[whole:]
        cursor = await driver.execute(sqlite_insert(len(rest)), [v for record in rest for v in record])
        count += max(int(cursor.rowcount or 0), 0)
        await cursor.close()
    return count
