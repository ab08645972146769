"""The restore drill: back up, destroy, restore into an empty database, and every table's checksum matches;
and every refusal (a taken name, a missing folder, a database that holds data, a file that is no backup,
the other engine's backup) is one clear line that changes nothing."""

from __future__ import annotations

import asyncio
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from storage.backups import SCHEMA_TABLES, BackupError, backup, data_checksums, held_rows, restore
from storage.database import Database
from storage.seeding import SeedPlan, seed_database
from switchboard.cli import main as cli
from tests.conftest import POSTGRES_ADMIN_URL, FreshDatabases, _admin_execute, engine_params

PLAN = SeedPlan(customers=60, days=20, seed=4, end_date=date(2026, 11, 30))


@pytest.fixture(params=engine_params())
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def destroy(url: str) -> None:
    """What a lost disk or a dropped database leaves: nothing."""
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        return
    asyncio.run(_admin_execute(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))


def empty_database(engine: str, folder: Path, name: str) -> str:
    """A database with no table at all (a new file; CREATE DATABASE without the migrated template)."""
    if engine == "sqlite":
        return f"sqlite+aiosqlite:///{folder / f'{name}.db'}"
    database = f"sb_restore_{os.getpid()}_{name}"
    asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    asyncio.run(_admin_execute(f'CREATE DATABASE "{database}"'))
    return f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{database}"


async def seeded_checksums(url: str) -> dict[str, tuple[int, str]]:
    database = Database.connect(url)
    try:
        await seed_database(database, PLAN)
        return await data_checksums(database)
    finally:
        await database.dispose()


async def run(url: str, action: str, path: Path) -> Any:
    database = Database.connect(url)
    try:
        if action == "backup":
            return await backup(database, url, path)
        if action == "restore":
            return await restore(database, url, path)
        return await data_checksums(database)
    finally:
        await database.dispose()


def test_backup_destroy_restore_and_every_table_matches(
    engine: str, fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    source = fresh_databases.url(engine)
    before = asyncio.run(seeded_checksums(source))
    assert before["customers"][0] == PLAN.customers and before["customer_communications"][0] > 100
    # PostgreSQL's month partitions are counted once, in their partitioned table.
    assert not [
        name for name in before if name.startswith(("customer_communications_", "message_status_events_"))
    ]

    path = tmp_path / "switchboard.backup"
    report = asyncio.run(run(source, "backup", path))
    assert path.is_file() and not list(tmp_path.glob(".*.partial"))  # no half-written file left behind
    assert report.rows == sum(rows for name, (rows, _) in before.items() if name not in SCHEMA_TABLES)
    destroy(source)

    # Into a freshly migrated (still empty) database, and into one without a single table (made here, so
    # dropped here: fresh_databases drops only its own).
    bare = empty_database(engine, tmp_path, "bare")
    try:
        for target in (fresh_databases.url(engine), bare):
            restored = asyncio.run(run(target, "restore", path))
            assert not restored.needs_migrate
            assert asyncio.run(run(target, "checksums", path)) == before
    finally:
        destroy(bare)


def test_refusals_are_one_clear_line_and_change_nothing(
    engine: str, fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    url = fresh_databases.url(engine)
    before = asyncio.run(seeded_checksums(url))
    path = tmp_path / "first.backup"
    asyncio.run(run(url, "backup", path))
    size = path.stat().st_size

    with pytest.raises(BackupError, match="already exists: choose a new name"):
        asyncio.run(run(url, "backup", path))
    assert path.stat().st_size == size
    with pytest.raises(BackupError, match=r"the folder .* does not exist"):
        asyncio.run(run(url, "backup", tmp_path / "no-such-folder" / "b.backup"))
    with pytest.raises(BackupError, match="is a file, not a folder"):
        asyncio.run(run(url, "backup", path / "inside"))
    # A folder that says yes to root but refuses the file (a read-only mount): the words, not the tool's.
    refusing = Path("/sys/switchboard-test.backup")
    if os.access(refusing.parent, os.W_OK):
        with pytest.raises(
            BackupError, match=r"^cannot write /sys/switchboard-test.backup: [a-z -]+ in /sys$"
        ):
            asyncio.run(run(url, "backup", refusing))

    # A restore over data: refused, the data untouched.
    with pytest.raises(BackupError, match=r"already holds data \(customer_communications [\d,]+"):
        asyncio.run(run(url, "restore", path))
    assert asyncio.run(run(url, "checksums", path)) == before

    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("customer list, do not lose\n")
    empty = fresh_databases.url(engine)
    with pytest.raises(BackupError, match="is not a Switchboard backup"):
        asyncio.run(run(empty, "restore", not_a_backup))
    with pytest.raises(BackupError, match="does not exist or is not a file"):
        asyncio.run(run(empty, "restore", tmp_path / "missing.backup"))
    other = fresh_databases.url("postgresql" if engine == "sqlite" else "sqlite")
    with pytest.raises(BackupError, match="backup and SWITCHBOARD_DATABASE_URL names a"):
        asyncio.run(run(other, "restore", path))

    async def still_empty() -> dict[str, int]:
        database = Database.connect(empty)
        try:
            return await held_rows(database)
        finally:
            await database.dispose()

    assert asyncio.run(still_empty()) == {}


def test_the_commands_say_what_they_did_and_refuse_in_one_line(
    fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = fresh_databases.url("sqlite")
    asyncio.run(seeded_checksums(source))
    path = tmp_path / "nightly.sqlite"
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", source)
    before = CliRunner().invoke(cli, ["checksums"])
    assert before.exit_code == 0 and "\tcustomers\t" not in before.output
    made = CliRunner().invoke(cli, ["backup", str(path)])
    assert made.exit_code == 0, made.output
    assert made.output.startswith("backed up ") and f"to {path} (" in made.output and "SQLite" in made.output

    again = CliRunner().invoke(cli, ["backup", str(path)])
    assert again.exit_code == 2 and "already exists" in again.output and "Traceback" not in again.output

    refused = CliRunner().invoke(cli, ["restore", str(path)])
    assert refused.exit_code == 2 and "already holds data" in refused.output

    # A refused restore into a file not there yet leaves none behind (connecting to check made one).
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    not_a_backup = tmp_path / "patients.csv"
    not_a_backup.write_text("name,phone\n")
    for wrong in (not_a_backup, tmp_path / "missing.backup"):
        refused = CliRunner().invoke(cli, ["restore", str(wrong)])
        assert refused.exit_code == 2 and "Traceback" not in refused.output, refused.output
        assert not (tmp_path / "new.db").exists()

    restored = CliRunner().invoke(cli, ["restore", str(path)])
    assert restored.exit_code == 0, restored.output
    assert restored.output.startswith("restored ") and "migrate" not in restored.output
    # Patients' data, as the backup: readable by its owner only.
    assert (tmp_path / "new.db").stat().st_mode & 0o777 == 0o600
    # The operator's drill: the restore's checksums are the source's, line for line.
    after = CliRunner().invoke(cli, ["checksums"])
    assert after.exit_code == 0 and after.output == before.output
    customers = next(line for line in after.output.splitlines() if line.startswith("customers\t"))
    assert int(customers.split("\t")[1]) > 0


def test_a_backup_of_a_database_that_is_not_there_is_refused_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "typo.db"
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", f"sqlite+aiosqlite:///{missing}")
    refused = CliRunner().invoke(cli, ["backup", str(tmp_path / "nightly.sqlite")])
    assert refused.exit_code == 2 and "there is no database at" in refused.output, refused.output
    assert not missing.exists() and not (tmp_path / "nightly.sqlite").exists()


def test_pg_dump_gets_libpq_options_and_no_password_on_its_command_line() -> None:
    from storage.backups import _libpq

    dsn, env = _libpq(
        "postgresql+asyncpg://app:s3cret@db.example:6432/switchboard?ssl=require&command_timeout=5"
    )
    assert dsn == "postgresql://app@db.example:6432/switchboard?sslmode=require"
    assert env["PGPASSWORD"] == "s3cret" and "s3cret" not in dsn


@pytest.mark.postgres
def test_a_postgresql_restore_that_fails_halfway_leaves_the_database_as_it_was(
    fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    """The restore drops the migrated database's empty tables and runs pg_restore's script in one psql
    transaction: a dump cut short (a copy interrupted) fails, and the database keeps its schema."""
    source = fresh_databases.url("postgresql")
    asyncio.run(seeded_checksums(source))
    whole = tmp_path / "whole.backup"
    asyncio.run(run(source, "backup", whole))
    cut = tmp_path / "cut.backup"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])

    target = fresh_databases.url("postgresql")
    before = asyncio.run(run(target, "checksums", cut))
    with pytest.raises(
        BackupError,
        match=r"the restore failed, and nothing was changed: pg_restore: (?!pg_restore)(?!error: )",
    ):
        asyncio.run(run(target, "restore", cut))
    assert asyncio.run(run(target, "checksums", cut)) == before
    restored = asyncio.run(run(target, "restore", whole))
    assert not restored.needs_migrate and restored.rows > 0
