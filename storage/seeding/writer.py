"""Buffers generated rows per table and writes them in foreign-key order, a few thousand at a time."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import Base
from storage.seeding.catalogue import Row

#: Rows per executemany: large enough to amortise the round trip, small enough to keep memory flat.
BATCH_ROWS = 5000


class IdSequence:
    """Explicit ids per table, so SQLite and PostgreSQL receive exactly the same rows."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def next(self, table: str) -> int:
        value = self._last.get(table, 0) + 1
        self._last[table] = value
        return value

    def reserve(self, table: str, upto: int) -> None:
        self._last[table] = max(self._last.get(table, 0), upto)


class RowSink:
    """Collects rows per table; when any buffer is full, every buffer is written parents first.

    Writing all buffers together keeps foreign keys satisfied: a child row is always buffered
    after its parent, so the parent is either written already or goes out in the same flush,
    earlier in `Base.metadata.sorted_tables` order.
    """

    def __init__(self, batch_rows: int = BATCH_ROWS) -> None:
        self.batch_rows = batch_rows
        self.tables: list[Table] = list(Base.metadata.sorted_tables)
        self.buffers: dict[str, list[Row]] = {t.name: [] for t in self.tables}
        self.counts: dict[str, int] = {}
        self._checked: set[str] = set()

    def add(self, table: str, row: Row) -> None:
        self.buffers[table].append(row)

    @property
    def full(self) -> bool:
        return any(len(rows) >= self.batch_rows for rows in self.buffers.values())

    async def flush(self, connection: AsyncConnection) -> None:
        for table in self.tables:
            rows = self.buffers[table.name]
            if not rows:
                continue
            self._check_complete(table, rows[0])
            for start in range(0, len(rows), self.batch_rows):
                await connection.execute(insert(table), rows[start : start + self.batch_rows])
            self.counts[table.name] = self.counts.get(table.name, 0) + len(rows)
            self.buffers[table.name] = []

    def _check_complete(self, table: Table, row: dict[str, Any]) -> None:
        """Every column must be given: a missing one would fall back to a wall-clock default."""
        if table.name in self._checked:
            return
        missing = set(table.columns.keys()) - row.keys()
        if missing:
            raise ValueError(f"seed rows for {table.name} lack {sorted(missing)}")
        self._checked.add(table.name)
