"""The bulk outbox insert that campaign planning, fallbacks and notifications share.

Rows go in with ON CONFLICT (idempotency_key) DO NOTHING, so planning a batch twice adds nothing, and
the counts returned are those of rows actually inserted. On SQLite the rows are bound below
SQLAlchemy's per-row parameter handling: tuples already in the driver's form (timestamps as SQLite
text, payloads as JSON text, each distinct value converted once) go to one ``executemany`` per status,
whose rowcount leaves out skipped rows. On PostgreSQL one statement with RETURNING reports them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

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
from storage.models.base import utcnow
from storage.sql import dialect_of, insert_for, table_of

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


SQLITE_INSERT = sqlite_insert()
_SQLITE_GROUP_INSERT = sqlite_insert(ROWS_PER_STATEMENT)

#: Enum member -> stored text, looked up per row instead of the slower ``.value`` descriptor.
_TEXT: dict[object, str] = {
    m: m.value for e in (Channel, MessageSource, MessageCategory, MessageStatus) for m in e
}
_PROVIDER_TEXT: dict[Channel, str] = {c: p.value for c, p in PROVIDER_FOR_CHANNEL.items()}


def outbox_rows(entries: Sequence[OutboxEntry], now: datetime) -> list[dict[str, Any]]:
    """Insert parameters for ``entries``; every row carries the same keys so they go as one executemany."""
    outbound = Direction.OUTBOUND.value
    planned = MessageStatus.PLANNED
    text = _TEXT
    return [
        {
            "customer_id": e.customer_id,
            "channel": text[e.channel],
            "provider": _PROVIDER_TEXT[e.channel],
            "direction": outbound,
            "source": text[e.source],
            "source_ref": e.source_ref,
            "category": text[e.category],
            "idempotency_key": e.idempotency_key,
            "template_id": e.template_id,
            "campaign_id": e.campaign_id,
            "to_address": e.to_address,
            "subject": e.subject,
            "body": e.body,
            "payload": e.payload or None,
            "status": text[e.status],
            "status_reason": e.status_reason,
            "next_attempt_at": (e.send_at or now) if e.status is planned else None,
            "segments": e.segments,
            "encoding": e.encoding,
            "cost_micros": e.cost_micros,
            "currency": e.currency,
            "attempts": 0,
            "created_at": now,
        }
        for e in entries
    ]


def sqlite_timestamp(value: datetime) -> str:
    """What `UtcDateTime` stores on SQLite: naive UTC text, always with microseconds."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: Switchboard stores timezone-aware UTC timestamps")
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def sqlite_records(entries: Sequence[OutboxEntry], now: datetime) -> dict[str, list[tuple[Any, ...]]]:
    """Driver-ready rows for ``entries``, grouped by stored status (the rowcount of each group is exact)."""
    text, providers = _TEXT, _PROVIDER_TEXT
    outbound, planned = Direction.OUTBOUND.value, MessageStatus.PLANNED
    created = sqlite_timestamp(now)
    moments: dict[datetime | None, str | None] = {None: created, now: created}
    payloads: dict[int, str | None] = {}
    groups: dict[str, list[tuple[Any, ...]]] = {}
    for e in entries:
        send_at = e.send_at
        moment = moments.get(send_at)
        if moment is None and send_at is not None:
            moment = moments[send_at] = sqlite_timestamp(send_at)
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
            e.subject,
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
    if dialect_of(session) == "postgresql":
        statement = insert_for(session, OUTBOX).on_conflict_do_nothing(
            index_elements=[OUTBOX.c.idempotency_key]
        )
        result = await session.execute(statement.returning(OUTBOX.c.status), outbox_rows(entries, now))
        return Counter(result.scalars().all())
    # Straight to aiosqlite, inside the transaction the session's connection has begun: SQLAlchemy's
    # per-row parameter handling would cost more than SQLite's own work.
    raw = await (await session.connection()).get_raw_connection()
    driver: Any = raw.driver_connection
    inserted: Counter[str] = Counter()
    for status, records in sqlite_records(entries, now).items():
        inserted[status] = await _sqlite_insert_records(driver, records)
    return inserted


async def _sqlite_insert_records(driver: Any, records: Sequence[tuple[Any, ...]]) -> int:
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
