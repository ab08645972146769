"""PgBouncer in transaction mode in front of the test PostgreSQL, as docs/operations.md sets it up, for the
tests that run Switchboard through it. CI installs Debian's pgbouncer (1.18, which knows nothing of prepared
statements: the hard case)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.journeys.conftest import free_port, wait_for


def pgbouncer_binary() -> str:
    return shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@contextmanager
def pgbouncer(folder: Path, postgres_url: str, *, pool_size: int = 4) -> Iterator[str]:
    """Runs PgBouncer in transaction mode with `pool_size` server connections; yields the URL of
    `postgres_url`'s database through it. Its log is `folder/pgbouncer.log`."""
    if not Path(pgbouncer_binary()).exists():
        pytest.skip("pgbouncer is not installed (CI installs it with apt-get)")
    url = make_url(postgres_url)
    port = free_port()
    config = folder / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host={url.host or '127.0.0.1'} port={url.port or 5432} user={url.username or 'postgres'}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = any\npool_mode = transaction\n"
        f"default_pool_size = {pool_size}\nmax_client_conn = 500\nserver_reset_query =\n"
    )
    # PgBouncer refuses to run as root; it reads its configuration before it drops to `nobody`.
    as_user = ["-u", "nobody"] if os.geteuid() == 0 else []
    log = (folder / "pgbouncer.log").open("ab")
    process = subprocess.Popen(
        [pgbouncer_binary(), *as_user, str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for(lambda: "listening on 127.0.0.1" in (folder / "pgbouncer.log").read_text(), 20, "pgbouncer")
        yield url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
