"""Switchboard through PgBouncer in transaction mode (docs/operations.md): without
SWITCHBOARD_DATABASE_TRANSACTION_POOLING, asyncpg's prepared statements meet other clients' server
connections and fail; with it, concurrent transactions of many clients over a few server connections all
land, and no prepared statement is left behind on a server connection. The commands that hold a session refuse to run through it. The whole compose topology through
PgBouncer is in test_topology.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from storage.database import Database
from storage.models import Customer
from switchboard.cli import main as cli
from tests.conftest import FreshDatabases
from tests.deploy.pgbouncer import pgbouncer

pytestmark = [pytest.mark.postgres]


async def _many_clients(url: str, run: str, *, transaction_pooling: bool) -> int:
    """Twenty clients, each writing and reading in thirty transactions of its own; how many customers."""
    database = Database.connect(url, transaction_pooling=transaction_pooling)
    try:

        async def client(number: int) -> None:
            for turn in range(30):
                async with database.sessions() as session:
                    session.add(Customer(name=f"{run} client {number} turn {turn}"))
                    await session.flush()
                    mine = (
                        select(func.count())
                        .select_from(Customer)
                        .where(Customer.name.like(f"{run} client {number} %"))
                    )
                    assert await session.scalar(mine) == turn + 1
                    await session.commit()

        await asyncio.gather(*(client(number) for number in range(20)))
        async with database.read_sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(Customer)) or 0)
    finally:
        await database.dispose()


def test_transaction_pooling_is_what_makes_pgbouncer_work(
    fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    direct = fresh_databases.url("postgresql")
    before = asyncio.run(_many_clients(direct, "direct", transaction_pooling=False))
    (tmp_path / "without").mkdir()
    with pgbouncer(tmp_path / "without", direct, pool_size=3) as bounced:
        with pytest.raises(Exception, match="prepared statement"):
            asyncio.run(_many_clients(bounced, "bounced", transaction_pooling=False))
    # A PgBouncer of its own: the run above left asyncpg's named statements on its server connections.
    (tmp_path / "with").mkdir()
    with pgbouncer(tmp_path / "with", direct, pool_size=3) as bounced:
        landed = asyncio.run(_many_clients(bounced, "pooled", transaction_pooling=True))
        # Nothing piles up on the server connections (uniquely named statements left about 200 on each).
        left = asyncio.run(_prepared_statements_left(bounced))
    assert asyncio.run(_count(direct, "pooled")) == 20 * 30 and landed >= before + 20 * 30
    assert left == [0, 0, 0, 0, 0, 0]
    assert "login attempt: db=" in (tmp_path / "with" / "pgbouncer.log").read_text()


async def _count(url: str, run: str) -> int:
    database = Database.connect(url)
    try:
        async with database.read_sessions() as session:
            mine = select(func.count()).select_from(Customer).where(Customer.name.like(f"{run} client %"))
            return int(await session.scalar(mine) or 0)
    finally:
        await database.dispose()


async def _prepared_statements_left(url: str) -> list[int]:
    """pg_prepared_statements as seen by six transactions at once, so each server connection is asked."""
    database = Database.connect(url, transaction_pooling=True)
    try:

        async def ask() -> int:
            async with database.read_sessions() as session:
                count = await session.scalar(text("SELECT count(*) FROM pg_prepared_statements"))
                await asyncio.sleep(0.2)  # hold the server connection while the others ask
                return int(count or 0)

        return list(await asyncio.gather(*(ask() for _ in range(6))))
    finally:
        await database.dispose()


@pytest.mark.parametrize("command", [["migrate"], ["backup", "copy.dump"], ["restore", "copy.dump"]])
def test_commands_that_hold_a_session_refuse_to_run_through_it(
    command: list[str], fresh_databases: FreshDatabases, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", fresh_databases.url("postgresql"))
    monkeypatch.setenv("SWITCHBOARD_DATABASE_TRANSACTION_POOLING", "true")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 2
    assert f"`switchboard {command[0]}` needs PostgreSQL itself, not PgBouncer" in result.output
    assert not (tmp_path / "copy.dump").exists()
