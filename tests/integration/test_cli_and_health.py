"""The command line and the health endpoints, run as a user would run them."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from storage import migrate
from switchboard.settings import Settings

SWITCHBOARD = [sys.executable, "-m", "switchboard.cli"]


def run_cli(*args: str, database_url: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWITCHBOARD_DATABASE_URL": database_url}
    return subprocess.run([*SWITCHBOARD, *args], env=env, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_migrate_creates_the_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    result = run_cli("migrate", database_url=url)
    assert result.returncode == 0, result.stderr
    assert re.search(r"is at \w+ \(head\): its schema was created", result.stdout), result.stdout
    assert (tmp_path / "fresh.db").exists()
    again = run_cli("migrate", database_url=url)
    assert again.returncode == 0 and "(head): nothing to upgrade" in again.stdout, again.stdout


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://root@localhost/x", "must start with sqlite+aiosqlite:// or postgresql+asyncpg://"),
        ("postgresql+asyncpg://postgres:secret@127.0.0.1:1/x", "cannot reach the database"),
        ("sqlite+aiosqlite:////nonexistent-dir/sub/x.db", "cannot reach the database"),
    ],
)
def test_bad_database_urls_give_one_clear_line(url: str, fragment: str) -> None:
    result = run_cli("migrate", database_url=url)
    assert_one_line_error(result, fragment)
    assert "secret" not in result.stderr


def test_an_unmigrated_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    result = run_cli("seed", "--customers", "5", "--days", "2", database_url=url)
    assert_one_line_error(result, "not migrated", "switchboard migrate")


def test_seed_refuses_a_non_empty_database_unless_forced(database_url: str) -> None:
    args = ("seed", "--customers", "20", "--days", "5", "--end-date", "2026-11-01")
    first = run_cli(*args, database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert "seeded" in first.stdout
    again = run_cli(*args, database_url=database_url)
    assert_one_line_error(again, "already has data", "--force")
    if_empty = run_cli(*args, "--if-empty", database_url=database_url)
    assert if_empty.returncode == 0 and "not seeding" in if_empty.stdout
    forced = run_cli(*args, "--force", database_url=database_url)
    assert forced.returncode == 0, forced.stderr


async def test_health_and_readiness(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url))
    async with AsyncTestClient(app) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True


async def test_readiness_fails_when_the_schema_is_behind(database_url: str) -> None:
    await migrate.downgrade(database_url, "base")
    app = create_app(Settings(database_url=database_url))
    async with AsyncTestClient(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert "switchboard migrate" in ready.json()["detail"]
    await migrate.upgrade(database_url)


async def test_a_schema_a_newer_release_migrated_leaves_this_one_serving(
    database_url: str, tmp_path: Path
) -> None:
    """A rolling upgrade: the new release migrates, the old processes still run (and may restart) until each is
    replaced. They answered 503 "run switchboard migrate" and refused to start."""
    from sqlalchemy import text

    from storage.database import Database

    head = migrate.head_revision()
    database = Database.connect(database_url)
    try:
        async with database.sessions() as session, session.begin():
            await session.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        app = create_app(Settings(database_url=database_url))
        async with AsyncTestClient(app) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["ready"] is True
            assert f"newer than this release's {head}" in ready.json()["schema"]
        migrated = run_cli("migrate", database_url=database_url)
        assert migrated.returncode == 0, migrated.stderr
        assert f"is at 9999, newer than this release (head {head}): nothing to upgrade" in migrated.stdout
        status = run_cli("staff", "list", database_url=database_url)
        assert status.returncode == 0, status.stderr
        doctor = run_cli("doctor", database_url=database_url)
        assert "newer than this release" in doctor.stdout
    finally:
        async with database.sessions() as session, session.begin():
            await session.execute(text(f"UPDATE alembic_version SET version_num = '{head}'"))
        await database.dispose()


async def test_readiness_fails_when_the_database_is_unreachable() -> None:
    app = create_app(Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none"))
    async with AsyncTestClient(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"] == "unreachable"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_starts_and_answers_healthz(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    assert run_cli("migrate", database_url=url).returncode == 0
    port = free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": url,
        "SWITCHBOARD_WORKER_IN_PROCESS": "0",
        "SWITCHBOARD_SANDBOX": "0",
    }
    server = subprocess.Popen(
        [*SWITCHBOARD, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "serve did not answer /healthz within 30 s"
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=10)
    # SIGTERM: the stop is logged (the operations guide tells operators to look for this line); the queued
    # log handlers are flushed, since uvicorn's re-raised SIGTERM skips the exit hooks that would.
    logged = server.stderr.read() if server.stderr else ""
    assert "web process stopping: no new connections" in logged, logged[-2000:]


def test_production_refuses_sandbox_secrets(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SWITCHBOARD_ENVIRONMENT": "production",
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
    }
    result = subprocess.run([*SWITCHBOARD, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert_one_line_error(result, "SWITCHBOARD_SANDBOX must be 0", "SWITCHBOARD_TWILIO_AUTH_TOKEN")


def test_migrate_mirrors_the_kpi_definitions(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "kpi.db"
    assert run_cli("migrate", database_url=f"sqlite+aiosqlite:///{path}").returncode == 0
    with sqlite3.connect(path) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM kpi_metrics")}
    assert {"revenue", "no_show_rate", "delivery_rate", "first_response_time"} <= names


def test_report_replay_and_rollup_commands_answer_bad_input_plainly(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"
    assert run_cli("migrate", database_url=url).returncode == 0
    assert_one_line_error(run_cli("report", "run", "no-such-report", database_url=url), "no saved report")
    replay = run_cli("webhooks", "replay", database_url=url)
    assert replay.returncode == 0 and "replayed 0 webhooks; 0 still failing" in replay.stdout
    rebuilt = run_cli("rollups", "rebuild", database_url=url)
    assert rebuilt.returncode == 0 and "rollups rebuilt" in rebuilt.stdout
    bad_grain = run_cli("rollups", "rebuild", "--grain", "fortnight", database_url=url)
    assert bad_grain.returncode == 2 and "Traceback" not in bad_grain.stderr


def test_a_saved_report_with_a_broken_definition_is_refused_in_one_line(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "broken.db"
    url = f"sqlite+aiosqlite:///{path}"
    assert run_cli("migrate", database_url=url).returncode == 0
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO custom_reports (slug, name, shared, definition, created_at, updated_at) VALUES "
            "('broken', 'Broken', 0, '{\"query\": {\"metrics\": [\"revenue; DROP TABLE orders\"]}}', "
            "'2026-11-01 00:00:00', '2026-11-01 00:00:00')"
        )
    result = run_cli("report", "run", "broken", "--out", str(tmp_path / "out"), database_url=url)
    assert_one_line_error(result, "cannot run", "revenue")
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM orders").fetchone() == (0,)
