"""`switchboard --env-file`: an operator on a systemd host runs commands with the units' settings file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path


def run(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    return subprocess.run(
        [sys.executable, "-m", "switchboard.cli", *args],
        cwd=folder,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_commands_read_the_settings_file_as_systemd_does_and_the_shell_wins(tmp_path: Path) -> None:
    settings = tmp_path / "switchboard.env"
    settings.write_text(
        "# the operator's file\n"
        f"SWITCHBOARD_DATABASE_URL=sqlite+aiosqlite:///{tmp_path / 'from-file.db'}\n"
        "SWITCHBOARD_EMAIL_FROM=Northwind Clinics <hello@example.org>\n"
        'SWITCHBOARD_BUSINESS_NAME="Northwind $HOME Clinics"\n'
    )
    done = run(tmp_path, "--env-file", str(settings), "migrate")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "from-file.db").exists(), "the file's database URL was used"
    with sqlite3.connect(tmp_path / "from-file.db") as db:
        assert db.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)

    # Values with spaces and a `$` come through as written (no expansion), as systemd reads them.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; from switchboard.cli import read_env_file; read_env_file(sys.argv[1]); "
            "print(os.environ['SWITCHBOARD_EMAIL_FROM']); print(os.environ['SWITCHBOARD_BUSINESS_NAME'])",
            str(settings),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")},
    )
    assert probe.stdout.splitlines() == ["Northwind Clinics <hello@example.org>", "Northwind $HOME Clinics"]

    # A `.env` in the folder the command runs in is not read as well: the file given is the settings.
    (tmp_path / ".env").write_text(f"SWITCHBOARD_DATABASE_URL=sqlite+aiosqlite:///{tmp_path / 'stray.db'}\n")
    done = run(tmp_path, "--env-file", str(settings), "migrate")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "stray.db").exists()
    (tmp_path / ".env").unlink()

    # A variable set in the shell wins over the file (SWITCHBOARD_MESSAGE_RETENTION_MONTHS=3 switchboard ...).
    done = run(
        tmp_path,
        "--env-file",
        str(settings),
        "migrate",
        SWITCHBOARD_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'from-shell.db'}",
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "from-shell.db").exists()


def test_a_settings_file_that_cannot_be_read_is_refused_in_words(tmp_path: Path) -> None:
    done = run(tmp_path, "--env-file", str(tmp_path / "missing.env"), "migrate")
    assert done.returncode == 2
    assert "missing.env" in done.stderr and "does not exist" in done.stderr
    assert "Traceback" not in done.stderr
