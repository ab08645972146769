"""The compose topology, run as processes on this machine against PostgreSQL: deploy/compose.yaml's own
commands and environment for a one-shot `migrate` (three at once, as systemd's units start them), two web
processes and two workers, behind nginx with deploy/nginx/switchboard.conf over TLS. The providers are the
sandbox, so the environment is `test` rather than `production` (production refuses the sandbox's secrets).

Through the proxy: readiness with the caller's request id kept, HTTP sent on to HTTPS, a body over the
widget's limit stopped by nginx, a campaign delivered once to every recipient by the two workers, a Twilio
webhook signed over the public HTTPS URL accepted and applied once when retried; then SIGTERM, and every
process leaves cleanly.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shlex
import signal
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from storage import migrate
from storage.database import Database
from storage.models import CustomerCommunication
from switchboard.settings import SANDBOX_SECRETS
from tests.conftest import FreshDatabases
from tests.deploy.deploy_files import compose, environment_of, nginx_for_this_machine, sandbox_env_file
from tests.deploy.pgbouncer import pgbouncer
from tests.deploy.test_deploy_files import nginx_binary, self_signed_certificate
from tests.heartbeats import heartbeat_pids
from tests.journeys.conftest import free_port, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TOKEN = "deploy-api-token"
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


@dataclass
class Topology:
    public_url: str
    http_port: int
    sandbox_url: str
    database_url: str
    folder: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    web_ports: list[int] = field(default_factory=list)
    metrics_ports: dict[int, int] = field(default_factory=dict)
    commands: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)

    def worker_metrics_port(self, index: int) -> int:
        return self.metrics_ports.setdefault(index, free_port())

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.commands[name] = (command, env)
        log = (self.folder / f"{name}.log").open("ab")
        # Each in a session of its own, so that stopping it stops what it started too (nginx's workers).
        self.processes[name] = subprocess.Popen(
            command, env=env, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def restart(self, name: str, ready_url: str) -> None:
        """What `systemctl restart` (or compose's `up -d --wait` of one service) does: SIGTERM, wait for the
        clean exit, start the same command again, wait until it answers."""
        self.processes[name].send_signal(signal.SIGTERM)
        self.processes[name].wait(timeout=60)
        self.start(name, *self.commands[name])
        wait_for(lambda: _ok(ready_url), 60, f"{name} again")

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        if body is not None:
            data = json.dumps(body).encode()
        request = urllib.request.Request(self.public_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {TOKEN}")
        request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30, context=TLS) as answer:
                return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()

    def api(self, method: str, path: str, body: Any = None) -> Any:
        status, _headers, raw = self.call(method, path, body)
        assert status < 400, f"{method} {path}: {status} {raw[:300]!r}"
        return json.loads(raw) if raw else None


def _compose_command(command: list[str], port: int | None = None) -> list[str]:
    """A compose service's command, run with this checkout's interpreter (and a free port for `serve`)."""
    assert command[0] == "switchboard"
    args = list(command[1:])
    if port is not None:
        args[args.index("--host") + 1] = "127.0.0.1"
        args[args.index("--port") + 1] = str(port)
    return [sys.executable, "-m", "switchboard.cli", *args]


@pytest.fixture(params=["postgresql", "pgbouncer"])
def topology(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_databases: FreshDatabases
) -> Iterator[Topology]:
    """`pgbouncer`: the web processes and workers reach PostgreSQL through PgBouncer in transaction mode,
    with SWITCHBOARD_DATABASE_TRANSACTION_POOLING; `migrate` and `seed` reach it directly, as
    docs/operations.md says."""
    engines = os.environ.get("SWITCHBOARD_TEST_ENGINES", "sqlite,postgresql").split(",")
    if "postgresql" not in engines:
        pytest.skip("the compose topology runs on PostgreSQL")
    if not Path(nginx_binary()).exists():
        pytest.skip("nginx is not installed (CI installs nginx-light)")
    database_url = fresh_databases.url("postgresql")
    with ExitStack() as stack:
        served_url = database_url
        if request.param == "pgbouncer":
            # Fewer server connections than the four processes' pools: transactions share them.
            served_url = stack.enter_context(pgbouncer(tmp_path, database_url, pool_size=6))
        yield from _run_topology(tmp_path, database_url, served_url)


def _run_topology(tmp_path: Path, database_url: str, served_url: str) -> Iterator[Topology]:
    http_port, https_port, sandbox, smtp = free_port(), free_port(), free_port(), free_port()
    web_ports = [free_port(), free_port()]
    hostname = f"localhost:{https_port}"
    services = compose({"POSTGRES_PASSWORD": "unused", "SWITCHBOARD_HOSTNAME": hostname})["services"]
    sandbox_url = f"http://127.0.0.1:{sandbox}"
    env_file = sandbox_env_file(
        sandbox, smtp, api_token=TOKEN, session_secret="deploy-session-secret-0123456789abcdef"
    )

    def env_of(service: str) -> dict[str, str]:
        environment = environment_of(services[service])
        assert environment["SWITCHBOARD_PUBLIC_URL"] == f"https://{hostname}"
        # The compose file names its own PostgreSQL service; this run has a fresh database of its own.
        environment["SWITCHBOARD_DATABASE_URL"] = database_url
        if service != "migrate" and served_url != database_url:
            environment["SWITCHBOARD_DATABASE_URL"] = served_url
            environment["SWITCHBOARD_DATABASE_TRANSACTION_POOLING"] = "true"
        environment["SWITCHBOARD_ENVIRONMENT"] = "test"
        return {**os.environ, **env_file, **environment}

    running = Topology(
        f"https://{hostname}", http_port, sandbox_url, database_url, tmp_path, web_ports=web_ports
    )
    # The one-shot migrate, three at once: each web and worker unit runs it before it starts.
    migrations = [
        subprocess.Popen(
            _compose_command(services["migrate"]["command"]),
            env=env_of("migrate"),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    for migration in migrations:
        output = migration.communicate(timeout=300)[0].decode(errors="replace")
        assert migration.returncode == 0, output
    assert asyncio.run(_revision(database_url)) == migrate.head_revision()
    seeded = subprocess.run(
        [sys.executable, "-m", "switchboard.cli", "seed", "--customers", "40", "--days", "3"],
        env=env_of("migrate"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert seeded.returncode == 0, seeded.stderr
    try:  # every process started is stopped, even when the next one fails to start
        running.start(
            "sandbox",
            [sys.executable, "-m", "switchboard.cli", "sandbox", "--failure-rate", "0"],
            {**env_of("web"), "SWITCHBOARD_PUBLIC_URL": f"https://{hostname}"},
        )
        web = services["web"]
        for index in range(web["deploy"]["replicas"]):
            running.start(f"web{index}", _compose_command(web["command"], web_ports[index]), env_of("web"))
        for index in range(services["worker"]["deploy"]["replicas"]):
            # Compose gives each worker its own address; here they share one host, so each gets a port.
            metrics = {
                "SWITCHBOARD_WORKER_METRICS_ADDRESS": f"127.0.0.1:{running.worker_metrics_port(index)}"
            }
            running.start(
                f"worker{index}",
                _compose_command(services["worker"]["command"]),
                {**env_of("worker"), **metrics},
            )
        certificate, key = self_signed_certificate(tmp_path)
        nginx_conf = nginx_for_this_machine(
            tmp_path,
            web_ports=web_ports,
            http_port=http_port,
            https_port=https_port,
            certificate=certificate,
            key=key,
        )
        running.start(
            "nginx",
            [nginx_binary(), "-p", str(tmp_path), "-c", str(nginx_conf), "-g", "daemon off;"],
            dict(os.environ),
        )
        for index, port in enumerate(web_ports):
            wait_for(lambda port=port: _ok(f"http://127.0.0.1:{port}/healthz"), 60, f"web{index} on {port}")
        wait_for(lambda: _ok(f"{sandbox_url}/_sandbox/stats"), 60, "the sandbox")
        wait_for(lambda: running.call("GET", "/healthz")[0] == 200, 30, "nginx in front of the web processes")
        yield running
    finally:
        for process in running.processes.values():
            # The whole group: killing nginx's master alone would leave its workers running, orphaned.
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return bool(answer.status == 200)


def test_the_compose_topology_serves_delivers_once_and_stops_cleanly(topology: Topology) -> None:
    # Readiness through the proxy, with the caller's request id kept end to end.
    status, headers, raw = topology.call("GET", "/readyz", headers={"X-Request-Id": "deploy-check-1"})
    assert status == 200, raw
    assert json.loads(raw)["ready"] is True
    assert headers["x-request-id"] == "deploy-check-1"
    assert "max-age" in headers["strict-transport-security"]

    # Plain HTTP goes on to HTTPS; the certificate path (HTTP-01) does not.
    plain = http.client.HTTPConnection("127.0.0.1", topology.http_port, timeout=10)
    plain.request("GET", "/analytics/overview?period=7d", headers={"Host": "localhost"})
    moved = plain.getresponse()
    assert moved.status == 308
    assert moved.getheader("Location") == "https://localhost/analytics/overview?period=7d"

    # nginx stops a body over the widget's limit before it reaches a web process.
    status, _headers, _raw = topology.call("POST", "/widget/messages", data=b"x" * 100_000)
    assert status == 413

    # A campaign: the two workers deliver it, once to each recipient.
    topology.api(
        "POST",
        "/api/campaigns",
        {
            "slug": "deploy-check",
            "name": "Deploy check",
            "template": "order_shipped",
            "channels": ["sms"],
            "category": "transactional",
            "variables": {"order_number": "DEPLOYCHECK", "tracking_url": "https://t.example/d"},
            "respect_quiet_hours": False,
        },
    )
    planned = topology.api("GET", "/api/campaigns/deploy-check/preview")["planned"]
    assert planned > 0
    topology.api("POST", "/api/campaigns/deploy-check/launch")

    def delivered() -> Counter[str] | None:
        messages = _sandbox(topology, "/_sandbox/messages?provider=twilio")["messages"]
        got = Counter(m["to"] for m in messages if "DEPLOYCHECK" in (m.get("body") or ""))
        return got if sum(got.values()) >= planned else None

    got = wait_for(delivered, 90, f"{planned} campaign SMS at the sandbox")
    assert len(got) == planned and set(got.values()) == {1}, f"someone got it twice: {got.most_common(3)}"
    pids = {topology.processes[name].pid for name in ("worker0", "worker1")}
    wait_for(
        lambda: pids <= asyncio.run(heartbeat_pids(topology.database_url)), 60, "both workers' heartbeats"
    )

    # Each worker's own metrics count its provider calls: together, one accepted call per message.
    before = len(_sandbox(topology, "/_sandbox/messages?provider=twilio")["messages"])
    accepted = 0
    for index in (0, 1):
        with urllib.request.urlopen(
            f"http://127.0.0.1:{topology.metrics_ports[index]}/metrics", timeout=10
        ) as answer:
            text = answer.read().decode()
        assert "switchboard_outbox_depth" not in text, "database figures come from the web processes only"
        accepted += sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith("switchboard_provider_calls_total{") and 'outcome="accepted"' in line
        )
    # The seeded demo may send its own messages meanwhile (a video reminder falling due): every message the
    # sandbox holds, read before and after the metrics, bounds the accepted calls.
    after = len(_sandbox(topology, "/_sandbox/messages?provider=twilio")["messages"])
    assert before <= accepted <= after, (before, accepted, after)
    # The web processes' /metrics has the database's view; nginx does not show it to the internet.
    assert topology.call("GET", "/metrics")[0] == 404
    with urllib.request.urlopen(f"http://127.0.0.1:{topology.web_ports[0]}/metrics", timeout=10) as answer:
        assert "switchboard_outbox_dead 0.0" in answer.read().decode()
    for name, process in topology.processes.items():
        rss = Path(f"/proc/{process.pid}/status").read_text().split("VmRSS:")[1].split()[0]
        print(f"{name} RSS {int(rss) // 1024} MB")

    # A provider webhook signed over the public HTTPS URL passes the proxy; its retry is applied once.
    params = {
        "MessageSid": "SMdeploycheck0001",
        "AccountSid": "ACsandbox00000000000000000000000000",
        "From": "+15551239876",
        "To": "+15005550006",
        "Body": "Is the clinic open on Saturday?",
    }
    signature = RequestValidator(SANDBOX_SECRETS["twilio_auth_token"]).compute_signature(
        topology.public_url + "/webhooks/twilio/inbound", params
    )
    for _attempt in range(2):
        status, _headers, raw = topology.call(
            "POST",
            "/webhooks/twilio/inbound",
            data=urllib.parse.urlencode(params).encode(),
            headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status < 300, raw
    assert asyncio.run(_inbound_with(topology.database_url, "SMdeploycheck0001")) == 1

    # An upgrade restarts one web process at a time (docs/operations.md): callers through nginx never see
    # it, neither a page nor a webhook. The webhook here is one nginx hands to the app (its forged signature
    # is then refused with 403); a 502 would be nginx finding no web process.
    answers: Counter[str] = Counter()
    counting = threading.Lock()
    stop = threading.Event()
    forged = {"X-Twilio-Signature": "forged", "Content-Type": "application/x-www-form-urlencoded"}

    def keep_calling() -> None:
        while not stop.is_set():
            for method, path, data in (
                ("GET", "/readyz", None),
                ("POST", "/webhooks/twilio/inbound", b"MessageSid=SMforged&Body=hi"),
            ):
                try:
                    answer = f"{method} {topology.call(method, path, data=data, headers=forged)[0]}"
                except OSError as error:  # the proxy itself unreachable: counted, so the test says so
                    answer = f"{method} {type(error).__name__}"
                with counting:
                    answers[answer] += 1

    callers = [threading.Thread(target=keep_calling) for _ in range(2)]
    for caller in callers:
        caller.start()
    try:
        for index, port in enumerate(topology.web_ports):
            served = sum(answers.values())
            topology.restart(f"web{index}", f"http://127.0.0.1:{port}/readyz")
            assert sum(answers.values()) > served, "no request went through while a web process restarted"
    finally:
        stop.set()
        for caller in callers:
            caller.join(timeout=60)
    assert set(answers) <= {"GET 200", "POST 403"}, f"answers during the rolling restart: {dict(answers)}"
    print(f"rolling restart: {dict(answers)}")

    # SIGTERM: every process drains and leaves with exit code 0.
    for name in ("web0", "web1", "worker0", "worker1"):
        topology.processes[name].send_signal(signal.SIGTERM)
    for name in ("web0", "web1", "worker0", "worker1"):
        code = topology.processes[name].wait(timeout=60)
        # uvicorn shuts down (requests finish, the app's shutdown runs), then raises the signal again as
        # the default does; systemd and Docker take an exit by SIGTERM as a clean stop.
        clean = (0, -signal.SIGTERM) if name.startswith("web") else (0,)
        assert code in clean, f"{name} left with {code}: {topology.log(name)[-2000:]}"
    for name in ("web0", "web1", "worker0", "worker1"):
        lines = [line for line in topology.log(name).splitlines() if line.startswith("{")]
        records = [json.loads(line) for line in lines]  # SWITCHBOARD_LOG_FORMAT=json: one object a line
        if name.startswith("worker"):
            # SWITCHBOARD_LOG_LEVEL=INFO reaches the workers too, not only the web processes.
            assert any(r["level"] == "INFO" and "started: sending on" in r["message"] for r in records), lines
        assert "Traceback" not in topology.log(name), shlex.quote(topology.log(name)[-2000:])
    bouncer_log = topology.folder / "pgbouncer.log"
    if bouncer_log.exists():
        # Every web process and worker logged in through PgBouncer (one line per client connection).
        assert bouncer_log.read_text().count("login attempt: db=") >= 4


def _sandbox(topology: Topology, path: str) -> Any:
    with urllib.request.urlopen(topology.sandbox_url + path, timeout=10) as answer:
        return json.loads(answer.read())


async def _revision(url: str) -> str | None:
    database = Database.connect(url)
    try:
        return await migrate.current_revision(database.engine)
    finally:
        await database.dispose()


async def _inbound_with(url: str, sid: str) -> int:
    database = Database.connect(url)
    try:
        async with database.read_sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(CustomerCommunication)
                .where(CustomerCommunication.provider_message_id == sid)
            )
    finally:
        await database.dispose()
    return int(count or 0)
