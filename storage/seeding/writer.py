"""Buffers generated rows per table and bulk-loads them in foreign-key order, many thousands at a time.

Rows are written below SQLAlchemy's per-value type processing: each table gets a statement built once
from its `Table` and a converter that turns a row dict into a tuple already in the driver's form.
SQLite receives one `executemany` per batch; PostgreSQL receives the rows through asyncpg's binary
COPY, which is several times faster than any INSERT.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import Base
from storage.seeding.catalogue import Row
from storage.sql import driver_converter

#: Rows per executemany or COPY: large enough to amortise the call, small enough to keep memory flat.
BATCH_ROWS = 20_000

Convert = Callable[[Any], Any]


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


class TableWriter:
    """Turns row dicts of one table into driver-ready tuples and writes them in one call per batch."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        self.table = table
        self.postgres = dialect.name == "postgresql"
        self.columns = [column.name for column in table.columns]
        # itemgetter of several keys returns a tuple (of one key, the bare value); every seeded table has several.
        assert len(self.columns) > 1, table.name
        self._get = itemgetter(*self.columns)
        #: (position, converter, applies to None too): JSON turns None into 'null', as SQLAlchemy does.
        self.converters: list[tuple[int, Convert, bool]] = []
        for position, column in enumerate(table.columns):
            converter = self._converter(column.type, dialect)
            if converter is not None:
                self.converters.append((position, converter, isinstance(column.type, JSON)))
        preparer = dialect.identifier_preparer
        names = ", ".join(preparer.quote(name) for name in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        self.insert_sql = f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES ({marks})"

    def _converter(self, column_type: Any, dialect: Dialect) -> Convert | None:
        return driver_converter(column_type, dialect)

    def tuples(self, rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        get, converters = self._get, self.converters
        if not converters:
            return [get(row) for row in rows]
        out: list[tuple[Any, ...]] = []
        append = out.append
        for row in rows:
            values = list(get(row))
            for position, convert, with_none in converters:
                value = values[position]
                if value is not None or with_none:
                    values[position] = convert(value)
            append(tuple(values))
        return out

    async def write(self, connection: AsyncConnection, rows: Sequence[Row]) -> None:
        records = self.tuples(rows)
        if self.postgres:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.copy_records_to_table(self.table.name, records=records, columns=self.columns)
        else:
            await connection.exec_driver_sql(self.insert_sql, records)


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
        self._writers: dict[tuple[str, str], TableWriter] = {}

    def add(self, table: str, row: Row) -> None:
        # Buffers are cleared in place and never replaced, so a producer may hold on to one.
        self.buffers[table].append(row)

    @property
    def full(self) -> bool:
        return any(len(rows) >= self.batch_rows for rows in self.buffers.values())

    async def flush(self, connection: AsyncConnection) -> None:
        dialect = connection.dialect
        started = False
        for table in self.tables:
            rows = self.buffers[table.name]
            if not rows:
                continue
            self._check_complete(table, rows[0])
            writer = self._writer(table, dialect)
            if writer.postgres and not started:
                # COPY goes to the raw connection; make sure SQLAlchemy's transaction has begun on it.
                await connection.exec_driver_sql("SELECT 1")
                started = True
            for start in range(0, len(rows), self.batch_rows):
                await writer.write(connection, rows[start : start + self.batch_rows])
            self.counts[table.name] = self.counts.get(table.name, 0) + len(rows)
            rows.clear()

    def _writer(self, table: Table, dialect: Dialect) -> TableWriter:
        key = (table.name, dialect.name)
        writer = self._writers.get(key)
        if writer is None:
            writer = self._writers[key] = TableWriter(table, dialect)
        return writer

    def _check_complete(self, table: Table, row: dict[str, Any]) -> None:
        """Every column must be given: a missing one would fall back to a wall-clock default."""
        if table.name in self._checked:
            return
        missing = set(table.columns.keys()) - row.keys()
        if missing:
            raise ValueError(f"seed rows for {table.name} lack {sorted(missing)}")
        self._checked.add(table.name)
