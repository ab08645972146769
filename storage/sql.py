"""Small SQL helpers shared by the repositories: typed table access, dialect-aware upserts and bulk inserts."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import JSON, ColumnElement, String, Table, and_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from storage.models.base import UtcDateTime, postgres_timestamp, sqlite_timestamp


def table_of(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def dialect_of(session: AsyncSession | AsyncConnection) -> str:
    if isinstance(session, AsyncConnection):
        return session.dialect.name
    return session.get_bind().dialect.name


def insert_for(session: AsyncSession | AsyncConnection, table: Table) -> Any:
    """An INSERT that supports ON CONFLICT on the session's engine (SQLite and PostgreSQL share the API)."""
    return postgresql.insert(table) if dialect_of(session) == "postgresql" else sqlite.insert(table)


def driver_converter(column_type: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """What turns a Python value of `column_type` into the driver's form, as SQLAlchemy would bind it; None
    when the driver takes the value as it is. For writers that bind below SQLAlchemy's per-value processing."""
    if isinstance(column_type, UtcDateTime):
        return postgres_timestamp if dialect.name == "postgresql" else sqlite_timestamp
    impl = column_type.dialect_impl(dialect)
    if isinstance(impl, JSON):
        # JSON as text, the way SQLAlchemy binds it (its asyncpg codec takes text too); None is 'null'.
        return _json_text
    processor: Callable[[Any], Any] | None = impl.bind_processor(dialect)
    return processor


_MISSING = object()


def _json_text(value: Any) -> str:
    return "null" if value is None else json.dumps(value)


async def insert_rows(
    connection: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    update_on_conflict: tuple[Sequence[str], Sequence[str]] | None = None,
) -> None:
    """Insert `rows` (dicts with the same keys, the columns' keys) in one executemany; columns they leave out
    get their Python default, computed once for all of them (SQL defaults are refused: give those values). `update_on_conflict=(key columns, columns to update)` upserts.

    On SQLite the rows go to the driver as tuples, skipping SQLAlchemy's per-value processing, which costs
    several times SQLite's own work for a bulk load (an import of a million customers); PostgreSQL keeps
    SQLAlchemy's executemany, which asyncpg already sends in batches."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        statement = postgresql.insert(table)
        if update_on_conflict is not None:
            keys, changed = update_on_conflict
            statement = statement.on_conflict_do_update(
                index_elements=list(keys), set_={name: statement.excluded[name] for name in changed}
            )
        await connection.execute(statement, list(rows))
        return
    dialect = connection.dialect
    given = list(rows[0])
    defaults: dict[str, Any] = {}
    for column in table.columns:
        if column.key in rows[0] or column.default is None:
            continue
        default: Any = column.default
        if default.is_scalar:
            defaults[column.key] = default.arg
        elif default.is_callable:
            defaults[column.key] = default.arg(None)  # a default that needs the execution context fails here
        else:
            raise ValueError(f"{table.name}.{column.name}: its default is SQL; give the value in every row")
    keys = given + list(defaults)
    names = [table.c[key].name for key in keys]
    converters = [
        (position, converter)
        for position, key in enumerate(keys)
        if (converter := driver_converter(table.c[key].type, dialect)) is not None
    ]
    width = len(given)
    fixed = [defaults[key] for key in keys[width:]]
    for position, convert in converters:
        if position >= width and fixed[position - width] is not None:
            fixed[position - width] = convert(fixed[position - width])
    # Timestamps repeat (a file's consent dates): each distinct one is converted once. JSON turns None
    # into 'null', as SQLAlchemy binds it.
    row_converters: list[tuple[int, Callable[[Any], Any], dict[Any, Any] | None]] = [
        (position, convert, {} if isinstance(table.c[keys[position]].type, UtcDateTime) else None)
        for position, convert in converters
        if position < width
    ]
    json_columns = {position for position, key in enumerate(given) if isinstance(table.c[key].type, JSON)}
    records: list[tuple[Any, ...]] = []
    for row in rows:
        values = [row[name] for name in given]
        for position, convert, seen in row_converters:
            value = values[position]
            if seen is not None:
                if value is not None:
                    converted = seen.get(value, _MISSING)
                    if converted is _MISSING:
                        converted = seen[value] = convert(value)
                    values[position] = converted
            elif value is not None or position in json_columns:
                values[position] = convert(value)
        values.extend(fixed)
        records.append(tuple(values))
    preparer = dialect.identifier_preparer
    sql = (
        f"INSERT INTO {preparer.format_table(table)} ({', '.join(preparer.quote(n) for n in names)}) "
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    if update_on_conflict is not None:
        conflict, changed = update_on_conflict
        sql += (
            f" ON CONFLICT ({', '.join(preparer.quote(table.c[k].name) for k in conflict)}) DO UPDATE SET "
            + ", ".join(
                f"{preparer.quote(table.c[k].name)} = excluded.{preparer.quote(table.c[k].name)}"
                for k in changed
            )
        )
    await connection.exec_driver_sql(sql, records)


class folded(FunctionElement[str]):
    """A text in lower case for searching without case: PostgreSQL's lower() folds every letter; SQLite's
    folds A-Z only, so there it is Python's str.lower (registered on each connection as `unicode_lower`),
    and "MÜLLER" finds "Müller" on both. Only searches use it: it calls into Python for every row."""

    type = String()
    inherit_cache = True


@compiles(folded)
def _folded_elsewhere(element: folded, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(folded, "sqlite")
def _folded_on_sqlite(element: folded, compiler: Any, **kw: Any) -> str:
    return f"unicode_lower({compiler.process(element.clauses, **kw)})"


def contains_folded(column: Any, text: str) -> ColumnElement[bool]:
    """`column` contains `text`, without case, its LIKE wildcards taken as letters."""
    return folded(column).contains(text.lower(), autoescape=True)


def name_has_words(column: Any, text: str) -> ColumnElement[bool]:
    """`column` (a name) contains each word of `text` in any order, without case: "Schmidt Florian",
    "schmidt, florian" and "Flo Schm" find Florian Schmidt. One word is `contains_folded`."""
    # Each word once, at most eight (a pasted paragraph is no name, and each word is one more LIKE).
    words = list(dict.fromkeys(word for word in re.split(r"[\s,]+", text) if word))[:8]
    if not words:
        return contains_folded(column, text)
    return and_(*(contains_folded(column, word) for word in words))


def equals_folded(column: Any, text: str) -> ColumnElement[bool]:
    return folded(column) == text.lower()
