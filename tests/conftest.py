"""Shared fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL.

PostgreSQL tests use one database per test run (created and migrated once) and empty every
table before each test. When PostgreSQL is unreachable they skip with the reason, except under
CI=true, where they fail: CI must prove every feature works on both engines.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from storage import migrate
from storage.database import Database
from storage.models import Base

# Tests start the workers they need themselves.
os.environ.setdefault("SWITCHBOARD_WORKER_IN_PROCESS", "0")

POSTGRES_ADMIN_URL = os.environ.get(
    "SWITCHBOARD_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
ENGINES = [e for e in os.environ.get("SWITCHBOARD_TEST_ENGINES", "sqlite,postgresql").split(",") if e]
IN_CI = os.environ.get("CI", "").lower() == "true"


def _postgres_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required under CI=true but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


async def _admin_execute(statement: str) -> None:
    import asyncpg  # only the PostgreSQL tests need it

    dsn = POSTGRES_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (migrating once is much faster than per test)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(migrate.upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own for this test run, migrated to head, dropped at the end."""
    name = f"sb_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # any connection problem means the engine is unavailable
        _postgres_unavailable(f"{POSTGRES_ADMIN_URL} did not answer ({error.__class__.__name__}: {error})")
    url = f"{base}/{name}"
    asyncio.run(migrate.upgrade(url))
    yield url
    asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _engine_params() -> list[object]:
    marks = {"postgresql": [pytest.mark.postgres]}
    return [pytest.param(e, marks=marks.get(e, []), id=e) for e in ENGINES]


@pytest.fixture(params=_engine_params())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database on each configured engine."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "switchboard.db"
        shutil.copy(template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(_truncate_all(url))
    return url


async def _truncate_all(url: str) -> None:
    database = Database.connect(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with database.engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await database.dispose()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database.connect(database_url)
    yield db
    await db.dispose()


class FreshDatabases:
    """New, empty, migrated databases on demand, for tests that seed once and read many times.

    SQLite copies the migrated template file; PostgreSQL clones a migrated template database
    (CREATE DATABASE ... TEMPLATE), which takes a fraction of a second. Every database made is
    dropped at the end of the run.
    """

    def __init__(self, folder: Path, sqlite_template: Path) -> None:
        self.folder = folder
        self.sqlite_template = sqlite_template
        self._postgres_template: str | None = None
        self._made: list[str] = []

    def url(self, engine: str) -> str:
        name = f"sb_fresh_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        if engine == "sqlite":
            path = self.folder / f"{name}.db"
            shutil.copy(self.sqlite_template, path)
            return f"sqlite+aiosqlite:///{path}"
        template = self._template()
        asyncio.run(_admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        self._made.append(name)
        return f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"

    def _template(self) -> str:
        if self._postgres_template is None:
            name = f"sb_template_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            try:
                asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
            except Exception as error:  # any connection problem means the engine is unavailable
                _postgres_unavailable(
                    f"{POSTGRES_ADMIN_URL} did not answer ({error.__class__.__name__}: {error})"
                )
            self._made.append(name)
            asyncio.run(migrate.upgrade(f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"))
            self._postgres_template = name
        return self._postgres_template

    def drop_all(self) -> None:
        for name in reversed(self._made):
            try:
                asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            except Exception:  # the server went away: nothing left to clean up
                return


@pytest.fixture(scope="session")
def fresh_databases(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[FreshDatabases]:
    made = FreshDatabases(tmp_path_factory.mktemp("fresh"), sqlite_template)
    yield made
    made.drop_all()


def engine_params() -> list[object]:
    """Parameters for a fixture of one's own that runs on every configured engine."""
    return _engine_params()


@pytest.fixture(autouse=True)
def _fresh_names_per_test() -> Iterator[None]:
    """The bot keeps the names it read from a database for a minute, by the database's URL; tests reuse
    URLs for databases of other contents, so each test starts without them (else a question about a
    campaign one test seeded is read against another test's campaigns)."""
    from bot.commands import kpi

    kpi._known_cache.clear()
    yield
    kpi._known_cache.clear()
