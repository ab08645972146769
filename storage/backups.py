"""Backing up the whole database, and restoring a backup into an empty one.

- SQLite: the online backup API (`sqlite3.Connection.backup`) copies a consistent snapshot while the app
  keeps running; the copy is checked with `PRAGMA quick_check`.
- PostgreSQL: `pg_dump` in its custom format (compressed, restorable table by table), restored with
  `pg_restore` in one transaction. The client tools must be the server's major version or newer.

A backup is written beside its final name and renamed once complete, so a failed or interrupted run never
leaves a file that looks like a backup, and an existing file is never overwritten. A restore refuses a
database that holds any row: it is for a new (or freshly migrated, still empty) database, never a merge.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Table, func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SAWarning
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import migrate
from storage.database import Database
from storage.private_files import new_private_file

SQLITE_HEADER = b"SQLite format 3\x00"
PG_DUMP_HEADER = b"PGDMP"
#: Tables `switchboard migrate` fills (the schema revision, the KPI definitions mirrored from code): a
#: freshly migrated database has rows there and still holds nothing of the business.
SCHEMA_TABLES = frozenset({"alembic_version", "kpi_metrics"})
#: Free disk a scratch copy leaves, beyond the database's size again (so the app can still write).
SCRATCH_MARGIN_BYTES = 256 * 1024 * 1024


class BackupError(Exception):
    """A backup or restore that cannot go ahead, in words an operator can act on."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    engine: str
    size_bytes: int
    revision: str | None
    rows: int
    tables: int


@dataclass(frozen=True)
class RestoreReport:
    engine: str
    revision: str | None
    head: str
    rows: int
    tables: int

    @property
    def needs_migrate(self) -> bool:
        return self.revision != self.head


def engine_of(database_url: str) -> str:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return "sqlite"
    if url.get_backend_name() == "postgresql":
        return "postgresql"
    raise BackupError(f"backups support SQLite and PostgreSQL databases, not {url.get_backend_name()!r}")


def in_memory(database_url: str) -> bool:
    """Whether a SQLite URL names no file (an in-memory database)."""
    return make_url(database_url).database in (None, "", ":memory:")


def sqlite_file(database_url: str) -> Path:
    if in_memory(database_url):
        raise BackupError("an in-memory SQLite database has nothing to back up or restore into")
    return Path(str(make_url(database_url).database))


def _libpq(database_url: str) -> tuple[str, dict[str, str]]:
    """The URL as pg_dump/pg_restore take it (no driver, no password) and the environment with the password."""
    url: URL = make_url(database_url).set(drivername="postgresql")
    # asyncpg's query options are not libpq's: `ssl=require` is `sslmode=require`; the rest are dropped.
    ssl = url.query.get("ssl") or url.query.get("sslmode")
    url = url.set(query={"sslmode": str(ssl)} if isinstance(ssl, str) else {})
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    # URL.set(password=None) keeps the password; build the URL again without it.
    bare = URL.create(url.drivername, url.username, None, url.host, url.port, url.database, url.query)
    return bare.render_as_string(hide_password=False), env


def _writable_target(path: Path) -> Path:
    """Where the backup is written until complete; refuses a taken name or a folder it cannot write."""
    if path.exists():
        raise BackupError(f"{path} already exists: choose a new name (a backup never overwrites a file)")
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise BackupError(f"cannot write {path}: {folder} is a file, not a folder")
    if not folder.is_dir():
        raise BackupError(f"cannot write {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BackupError(f"cannot write {path}: no permission to write in {folder}")
    partial = path.with_name(f".{path.name}.partial")
    try:  # access() says yes to root everywhere, and a read-only mount or /sys still refuses: try it
        os.close(new_private_file(partial))
    except OSError as error:
        reason = (error.strerror or "refused").lower()
        raise BackupError(f"cannot write {path}: {reason} in {folder}") from None
    return partial


def _reflect(sync_connection: Any) -> MetaData:
    """Every table the database has (whatever revision it is at), as it is."""
    metadata = MetaData()
    partitions: set[str] = set()
    if sync_connection.dialect.name == "postgresql":
        # A month partition's rows are its partitioned table's rows: counted (and checksummed) there once.
        partitions = set(
            sync_connection.execute(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relispartition AND n.nspname = current_schema()"
                )
            ).scalars()
        )
    with warnings.catch_warnings():
        # Expression indexes (ix_customer_communications_failures) cannot be reflected; only tables matter here.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
        metadata.reflect(sync_connection, only=lambda name, _: name not in partitions)
    return metadata


async def _table_rows(connection: AsyncConnection) -> dict[str, int]:
    """Rows per table of the database (every table, schema tables included)."""
    metadata = await connection.run_sync(_reflect)
    counts: dict[str, int] = {}
    for table in metadata.sorted_tables:
        counts[table.name] = int(await connection.scalar(select(func.count()).select_from(table)) or 0)
    return counts


async def held_rows(database: Database) -> dict[str, int]:
    """Tables holding business rows, with their counts (empty for a new or freshly migrated database)."""
    async with database.engine.connect() as connection:
        counts = await _table_rows(connection)
    return {name: rows for name, rows in counts.items() if rows and name not in SCHEMA_TABLES}


async def backup(database: Database, database_url: str, path: Path) -> BackupReport:
    """Write a backup of the whole database to `path` (a new file)."""
    engine = engine_of(database_url)
    partial = _writable_target(path)
    try:
        revision = await migrate.current_revision(database.engine)
        async with database.engine.connect() as connection:
            counts = await _table_rows(connection)
        if revision is None or not counts:
            raise BackupError(
                "the database holds no Switchboard schema: nothing to back up (is SWITCHBOARD_DATABASE_URL "
                "right?)"
            )
        if engine == "sqlite":
            await asyncio.to_thread(_sqlite_copy, sqlite_file(database_url), partial, check=True)
        else:
            await _run_tool(
                "pg_dump",
                ["--format=custom", "--no-owner", "--no-privileges", f"--file={partial}"],
                database_url,
            )
        os.link(partial, path)  # fails if the name was taken meanwhile: a backup never replaces a file
        partial.unlink()
    except FileExistsError:
        partial.unlink(missing_ok=True)
        raise BackupError(
            f"{path} already exists: choose a new name (a backup never overwrites a file)"
        ) from None
    except BackupError as error:
        partial.unlink(missing_ok=True)
        raise BackupError(str(error).replace(str(partial), str(path))) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    size = await asyncio.to_thread(lambda: path.stat().st_size)
    rows = sum(n for name, n in counts.items() if name not in SCHEMA_TABLES)
    return BackupReport(path, engine, size, revision, rows, len(counts))


def _sqlite_copy(source: Path, target: Path, *, check: bool) -> None:
    """Copy one SQLite database into another with the online backup API (a consistent snapshot)."""
    if not source.exists():
        raise BackupError(f"{source} does not exist")
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        writer = sqlite3.connect(target)
        try:
            # One step, one read snapshot: a stepwise copy starts over whenever the app writes between
            # steps, and could never finish on a busy database. In WAL mode writers carry on meanwhile.
            reader.backup(writer)
            if check:
                verdict = writer.execute("PRAGMA quick_check").fetchone()
                if not verdict or verdict[0] != "ok":
                    raise BackupError(f"the copy of {source} failed SQLite's check: {verdict}")
        finally:
            writer.close()
    except sqlite3.Error as error:
        raise BackupError(f"SQLite could not copy {source}: {error}") from None
    finally:
        reader.close()


@asynccontextmanager
async def scratch_copy(database_url: str) -> AsyncIterator[str]:
    """A throwaway copy of a SQLite database, as a URL, deleted on exit: somewhere to try changes (a dry
    run) without holding the real database's write lock while they run. It sits beside the database (the
    folder the app may write, and the same disk), named after it and hidden."""
    source = sqlite_file(database_url)
    size = sum(f.stat().st_size for f in (source, Path(f"{source}-wal")) if f.exists())
    free = shutil.disk_usage(source.parent).free
    if free < size * 2 + SCRATCH_MARGIN_BYTES:
        # Filling the disk would make the app's own writes fail until the copy is gone.
        raise BackupError(
            f"not enough free disk beside {source} for a scratch copy ({free / 1e6:,.0f} MB free, "
            f"{size / 1e6:,.0f} MB needed twice over)"
        )
    try:
        handle, name = tempfile.mkstemp(prefix=f".{source.name}.scratch-", dir=source.parent)
    except OSError as error:
        raise BackupError(f"cannot write a scratch copy beside {source}: {error.strerror}") from None
    os.close(handle)
    target = Path(name)
    try:
        await asyncio.to_thread(_sqlite_copy, source, target, check=False)
        yield make_url(database_url).set(database=str(target)).render_as_string(hide_password=False)
    finally:
        for leftover in (
            target,
            target.with_name(target.name + "-wal"),
            target.with_name(target.name + "-shm"),
        ):
            leftover.unlink(missing_ok=True)


async def _run_tool(tool: str, arguments: list[str], database_url: str) -> None:
    found = shutil.which(tool)
    if found is None:
        raise BackupError(
            f"{tool} was not found: install the PostgreSQL client tools (the server's major version or newer)"
        )
    dsn, env = _libpq(database_url)
    process = await asyncio.create_subprocess_exec(
        found,
        *arguments,
        f"--dbname={dsn}",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, errors = await process.communicate()
    if process.returncode != 0:
        said = _tool_said(tool, errors) or f"exit status {process.returncode}"
        raise BackupError(f"{tool} failed: {said}")


def _tool_said(tool: str, errors: bytes) -> str:
    """A PostgreSQL tool's last lines of complaint, without its own "pg_dump: error: " before each."""
    lines = [line.strip() for line in errors.decode(errors="replace").splitlines() if line.strip()]
    cut = [re.sub(rf"^{re.escape(tool)}: (?:error: |warning: |detail: )?", "", line) for line in lines]
    return "; ".join(cut[-3:])


def backup_kind(path: Path) -> str:
    """'sqlite' or 'postgresql' by the file's first bytes; refuses anything else."""
    if not path.is_file():
        raise BackupError(f"{path} does not exist or is not a file")
    with path.open("rb") as file:
        head = file.read(len(SQLITE_HEADER))
    if head.startswith(SQLITE_HEADER):
        return "sqlite"
    if head.startswith(PG_DUMP_HEADER):
        return "postgresql"
    raise BackupError(
        f"{path} is not a Switchboard backup (neither a SQLite database nor a pg_dump custom-format file)"
    )


async def restore(database: Database, database_url: str, path: Path) -> RestoreReport:
    """Restore the backup at `path` into the (empty) database; refuses one that holds any row."""
    kind = backup_kind(path)
    engine = engine_of(database_url)
    if kind != engine:
        raise BackupError(
            f"{path} is a {_engine_name(kind)} backup and SWITCHBOARD_DATABASE_URL names a {_engine_name(engine)} "
            f"database: restore it into a {_engine_name(kind)} database"
        )
    if engine == "sqlite":
        await asyncio.to_thread(_check_sqlite_backup, path)
    held = await _held_rows_if_any(database, database_url)
    if held:
        shown = ", ".join(f"{name} {rows:,}" for name, rows in sorted(held.items(), key=lambda i: -i[1])[:4])
        raise BackupError(
            f"the database already holds data ({shown}{', …' if len(held) > 4 else ''}): restore only into "
            "an empty database (create a new one, or point SWITCHBOARD_DATABASE_URL at one)"
        )
    if engine == "sqlite":
        target = sqlite_file(database_url)
        await database.engine.dispose()  # no pooled connection keeps the old file open
        await database.read_engine.dispose()
        staging = target.with_name(f".{target.name}.restoring")
        staging.unlink(missing_ok=True)
        try:
            await asyncio.to_thread(_sqlite_copy, path, staging, check=False)
            os.chmod(staging, 0o600)  # patients' data: readable by its owner only, as the backup is
            for leftover in (Path(f"{target}-wal"), Path(f"{target}-shm")):
                leftover.unlink(missing_ok=True)
            staging.replace(target)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
    else:
        await _pg_restore(database, database_url, path)
    async with database.engine.connect() as connection:
        counts = await _table_rows(connection)
    return RestoreReport(
        engine,
        await migrate.current_revision(database.engine),
        migrate.head_revision(),
        sum(n for name, n in counts.items() if name not in SCHEMA_TABLES),
        len(counts),
    )


def sqlite_file_exists(database_url: str) -> bool:
    """Whether the URL names a SQLite file that is there (False for PostgreSQL and for memory)."""
    try:
        return (
            engine_of(database_url) == "sqlite"
            and not in_memory(database_url)
            and sqlite_file(database_url).exists()
        )
    except BackupError:
        return False


def drop_if_left_empty(database_url: str) -> None:
    """A SQLite file that a refused restore's connection made (it holds no table) is removed, so nothing is
    left behind that looks like a database; one that holds anything is kept."""
    if engine_of(database_url) != "sqlite" or in_memory(database_url):
        return
    target = sqlite_file(database_url)
    if not target.exists():
        return
    connection = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        empty = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    except sqlite3.Error:
        empty = False
    finally:
        connection.close()
    if empty:
        for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)


async def _pg_restore(database: Database, database_url: str, path: Path) -> None:
    """pg_restore's SQL, after dropping the (empty) tables a migrated database already has, run by psql in
    one transaction of our own: a restore that fails leaves the database as it was. (pg_restore --clean
    cannot drop the month partitions' keys, which belong to their partitioned tables.)"""
    tools = {tool: shutil.which(tool) for tool in ("pg_restore", "psql")}
    missing = [tool for tool, found in tools.items() if found is None]
    if missing:
        raise BackupError(
            f"{' and '.join(missing)} not found: install the PostgreSQL client tools (the server's major "
            "version or newer)"
        )
    async with database.engine.connect() as connection:
        tables = list(
            (
                await connection.execute(
                    text(
                        "SELECT quote_ident(c.relname) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                        "AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
                    )
                )
            ).scalars()
        )
        functions = list(
            (
                await connection.execute(
                    text(
                        "SELECT p.oid::regprocedure::text FROM pg_proc p "
                        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema() "
                        "AND p.proname LIKE :ours"
                    ),
                    {"ours": "switchboard\\_%"},
                )
            ).scalars()
        )
    drops = [f"DROP TABLE IF EXISTS {', '.join(tables)} CASCADE;"] if tables else []
    drops += [f"DROP FUNCTION IF EXISTS {function} CASCADE;" for function in functions]
    dsn, env = _libpq(database_url)
    psql = await asyncio.create_subprocess_exec(
        str(tools["psql"]),
        "--no-psqlrc",
        "--quiet",
        "--set=ON_ERROR_STOP=1",
        f"--dbname={dsn}",
        env={**env, "PGOPTIONS": "-c client_min_messages=warning"},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    script = await asyncio.create_subprocess_exec(
        str(tools["pg_restore"]),
        "--no-owner",
        "--no-privileges",
        "--file=-",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert psql.stdin is not None and psql.stderr is not None
    assert script.stdout is not None and script.stderr is not None
    said = {
        "psql": asyncio.ensure_future(psql.stderr.read()),
        "pg_restore": asyncio.ensure_future(script.stderr.read()),
    }
    # psql runs piped input statement by statement (its --single-transaction applies only to -f/-c): the
    # transaction is our own, and COMMIT goes only after pg_restore has written its whole script. Input that
    # ends without it (pg_restore failed) rolls everything back when psql disconnects.
    psql_stopped = False
    try:
        psql.stdin.write(("BEGIN;\n" + "\n".join(drops) + "\n").encode())
        while chunk := await script.stdout.read(1 << 16):
            psql.stdin.write(chunk)
            await psql.stdin.drain()
        await script.wait()
        if script.returncode == 0:
            psql.stdin.write(b"COMMIT;\n")
            await psql.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        psql_stopped = True  # psql stopped at an error (its message says which): the rest is moot
        if script.returncode is None:
            script.kill()
    finally:
        psql.stdin.close()
        await script.wait()
        await psql.wait()
    culprits = [("psql", psql.returncode)] if psql_stopped or psql.returncode else []
    culprits += [("pg_restore", script.returncode)]
    for tool, code in culprits:
        if code != 0:
            shown = _tool_said(tool, await said[tool]) or f"exit status {code}"
            raise BackupError(f"the restore failed, and nothing was changed: {tool}: {shown}")


def _engine_name(engine: str) -> str:
    return "SQLite" if engine == "sqlite" else "PostgreSQL"


def _check_sqlite_backup(path: Path) -> None:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        verdict = connection.execute("PRAGMA quick_check").fetchone()
    except sqlite3.Error as error:
        raise BackupError(f"{path} cannot be read as a SQLite backup: {error}") from None
    finally:
        connection.close()
    if "alembic_version" not in tables:
        raise BackupError(
            f"{path} is a SQLite database but not a Switchboard backup (it has no schema revision)"
        )
    if not verdict or verdict[0] != "ok":
        raise BackupError(f"{path} is damaged (SQLite's check says: {verdict[0] if verdict else 'nothing'})")


async def _held_rows_if_any(database: Database, database_url: str) -> dict[str, int]:
    if engine_of(database_url) == "sqlite" and not sqlite_file(database_url).exists():
        return {}
    return await held_rows(database)


async def data_checksums(database: Database) -> dict[str, tuple[int, str]]:
    """Per table: (rows, SHA-256 of every row in primary-key order), to prove two databases hold the same data."""
    async with database.engine.connect() as connection:
        metadata = await connection.run_sync(_reflect)
        sums: dict[str, tuple[int, str]] = {}
        for table in sorted(metadata.sorted_tables, key=lambda t: t.name):
            digest = hashlib.sha256()
            rows = 0
            for row in await connection.execute(select(table).order_by(*_order_of(table))):
                digest.update(json.dumps([_plain(v) for v in row], default=str).encode())
                rows += 1
            sums[table.name] = (rows, digest.hexdigest())
    return sums


def _order_of(table: Table) -> list[Any]:
    return list(table.primary_key.columns) or list(table.columns)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value
