"""The container image deploy/Dockerfile builds, run as compose runs it, against PostgreSQL and the sandbox.

Only where a container engine and the built image are at hand: set SWITCHBOARD_TEST_IMAGE to its tag
(`.ci/image` builds it and runs this; `make test` skips it). The containers share the host's network, so
they reach this machine's PostgreSQL and the sandbox as the processes of tests/deploy/test_topology.py do.

What it shows: the image runs as its unprivileged user with no compiler and no sources in it; compose's
one-shot `migrate` upgrades an empty database (twice at once, as replicas starting together would);
`serve` answers and Docker's own healthcheck finds it healthy; `worker` delivers a campaign once to each
recipient; `backup` writes a dump with the image's pg_dump; and `docker stop` (SIGTERM, the process being
the container's pid 1) ends both within seconds with exit code 0 and JSON logs without a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from storage import migrate
from switchboard.settings import SANDBOX_SECRETS
from tests.deploy.deploy_files import compose, environment_of, sandbox_env_file
from tests.deploy.test_topology import _revision
from tests.journeys.conftest import free_port, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

IMAGE = os.environ.get("SWITCHBOARD_TEST_IMAGE", "")
TOKEN = "image-api-token"
#: The port the image's HEALTHCHECK asks (deploy/Dockerfile): `serve` keeps it, on the host's network.
SERVED_PORT = 8000


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr or done.stdout}"
    return done


@dataclass
class Containers:
    env_file: Path
    #: This run's own: a run stopped half-way leaves containers a later one must not trip over.
    suffix: str = field(default_factory=lambda: secrets.token_hex(3))
    names: list[str] = field(default_factory=list)

    def name(self, short: str) -> str:
        return f"{short}-{self.suffix}"

    def command(self, short: str, *command: str, detach: bool = False) -> list[str]:
        """`docker run` of the image as compose runs it (its env file), on the host's network."""
        self.names.append(self.name(short))
        mode = ["-d"] if detach else []
        return [
            "docker", "run", *mode, "--name", self.name(short), "--network", "host",
            "--env-file", str(self.env_file), IMAGE, *command,
        ]  # fmt: skip

    def run(self, short: str, *command: str, detach: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(short, *command, detach=detach), capture_output=True, text=True, timeout=300
        )

    def logs(self, short: str) -> str:
        done = docker("logs", self.name(short), check=False)
        return done.stdout + done.stderr

    def state(self, short: str) -> dict[str, Any]:
        return dict(json.loads(docker("inspect", "-f", "{{json .State}}", self.name(short)).stdout))

    def remove_all(self) -> None:
        for name in self.names:
            docker("rm", "-f", name, check=False)


@pytest.fixture
def containers(tmp_path: Path) -> Iterator[tuple[Containers, str, str]]:
    """An empty PostgreSQL database, the sandbox on this machine, and compose's environment for them."""
    if not IMAGE:
        pytest.skip("no image to run: SWITCHBOARD_TEST_IMAGE names one (.ci/image builds it)")
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.skip(f"image {IMAGE} is not built here, or no container engine answers")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", SERVED_PORT)) == 0:
            pytest.skip(f"port {SERVED_PORT}, which the image's healthcheck asks, is taken on this machine")
    admin = make_url(
        os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    name = f"sb_image_{secrets.token_hex(4)}"
    psql = [
        "psql",
        "-h",
        admin.host or "127.0.0.1",
        "-p",
        str(admin.port or 5432),
        "-U",
        admin.username or "postgres",
    ]
    subprocess.run([*psql, "-qc", f"CREATE DATABASE {name}"], check=True, timeout=60)
    database_url = str(admin.set(drivername="postgresql+asyncpg", database=name).render_as_string(False))
    sandbox, smtp = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox}"
    # compose.yaml's environment for the app's services, pointed at this database and at the sandbox.
    environment = {
        **environment_of(
            compose({"POSTGRES_PASSWORD": "unused", "SWITCHBOARD_HOSTNAME": "localhost"})["services"]["web"]
        ),
        "SWITCHBOARD_ENVIRONMENT": "test",  # production refuses the sandbox's secrets
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_PUBLIC_URL": f"http://127.0.0.1:{SERVED_PORT}",
        "SWITCHBOARD_FORWARDED_ALLOW_IPS": "127.0.0.1",
        **sandbox_env_file(
            sandbox, smtp, api_token=TOKEN, session_secret="image-session-secret-0123456789abcdef"
        ),
    }
    env_file = tmp_path / "switchboard.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in environment.items()))
    log = (tmp_path / "sandbox.log").open("ab")
    sandbox_process = subprocess.Popen(
        [sys.executable, "-m", "switchboard.cli", "sandbox", "--failure-rate", "0"],
        env={**os.environ, **environment},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    running = Containers(env_file)
    try:
        wait_for(lambda: _status(f"{sandbox_url}/_sandbox/stats") == 200, 60, "the sandbox")
        yield running, database_url, sandbox_url
    finally:
        running.remove_all()
        sandbox_process.terminate()
        with suppress(subprocess.TimeoutExpired):
            sandbox_process.wait(timeout=20)
        subprocess.run(
            [*psql, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False, timeout=60
        )


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _api(method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{SERVED_PORT}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        raw = answer.read()
    return json.loads(raw) if raw else None


def test_the_image_migrates_serves_sends_backs_up_and_stops_cleanly(
    containers: tuple[Containers, str, str],
) -> None:
    running, database_url, sandbox_url = containers
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", IMAGE).stdout)
    assert config["User"] == "switchboard"
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"]) and config["StopSignal"] == "SIGTERM"
    # Its user, and neither a compiler nor the sources (only the virtualenv was copied from the build).
    inside = running.run("sb-look", "sh", "-c", "id -u; command -v gcc cc make; ls -d /src 2>/dev/null; true")
    assert inside.stdout.split() == ["10001"], inside.stdout

    # compose's one-shot migrate, twice at once: one upgrades, the other waits on the lock and finds it done.
    command = compose({"POSTGRES_PASSWORD": "unused", "SWITCHBOARD_HOSTNAME": "localhost"})["services"]
    migrations = [
        subprocess.Popen(
            running.command(f"sb-migrate-{n}", *command["migrate"]["command"]),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in range(2)
    ]
    for migration in migrations:
        output = migration.communicate(timeout=300)[0]
        assert migration.returncode == 0, output
    assert asyncio.run(_revision(database_url)) == migrate.head_revision()
    seeded = running.run("sb-seed", "switchboard", "seed", "--customers", "30", "--days", "2")
    assert seeded.returncode == 0, seeded.stderr

    # web and worker as compose starts them (their commands), detached.
    assert command["web"]["command"][-1] == str(SERVED_PORT)
    assert running.run("sb-web", *command["web"]["command"], detach=True).returncode == 0
    assert running.run("sb-worker", *command["worker"]["command"], detach=True).returncode == 0
    wait_for(lambda: _status(f"http://127.0.0.1:{SERVED_PORT}/readyz") == 200, 90, "the web container")
    health = wait_for(
        lambda: running.state("sb-web").get("Health", {}).get("Status") == "healthy" or None,
        90,
        "Docker's healthcheck of the web container",
    )
    assert health

    # A campaign, delivered once to each recipient by the worker container.
    _api(
        "POST",
        "/api/campaigns",
        {
            "slug": "image-check",
            "name": "Image check",
            "template": "order_shipped",
            "channels": ["sms"],
            "category": "transactional",
            "variables": {"order_number": "IMAGECHECK", "tracking_url": "https://t.example/i"},
            "respect_quiet_hours": False,
        },
    )
    planned = _api("GET", "/api/campaigns/image-check/preview")["planned"]
    assert planned > 0
    _api("POST", "/api/campaigns/image-check/launch")

    def delivered() -> Counter[str] | None:
        with urllib.request.urlopen(f"{sandbox_url}/_sandbox/messages?provider=twilio", timeout=10) as answer:
            messages = json.loads(answer.read())["messages"]
        got = Counter(m["to"] for m in messages if "IMAGECHECK" in (m.get("body") or ""))
        return got if sum(got.values()) >= planned else None

    got = wait_for(delivered, 120, f"{planned} campaign SMS from the worker container")
    assert len(got) == planned and set(got.values()) == {1}, got.most_common(3)

    # A backup with the image's pg_dump, written where the image's user may write.
    backup = running.run(
        "sb-backup", "sh", "-c", "switchboard backup /tmp/check.dump && ls -l /tmp/check.dump"
    )
    assert backup.returncode == 0 and "check.dump" in backup.stdout, backup.stderr

    # SIGTERM to each container's pid 1: both drain and leave with 0, well before compose's 60 s grace.
    for name in ("sb-web", "sb-worker"):
        started = time.monotonic()
        docker("stop", "-t", "60", running.name(name))
        took = time.monotonic() - started
        state = running.state(name)
        assert state["ExitCode"] == 0 and took < 30, (
            name,
            state["ExitCode"],
            took,
            running.logs(name)[-2000:],
        )
        log = running.logs(name)
        assert "Traceback" not in log, log[-3000:]
        records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        assert records and all({"time", "level", "message"} <= set(r) for r in records), log[-2000:]
    worker_log = running.logs("sb-worker")
    assert "started: sending on" in worker_log, worker_log[-2000:]
    assert SANDBOX_SECRETS["api_token"] not in worker_log
