"""A hostile template cannot freeze the web process, on SQLite and PostgreSQL.

`switchboard serve` runs in a process of its own on a small seeded database. One client saves costly
templates through the JSON API again and again, previews a template that is costly only with the values
typed in (on the dashboard and through /api/messages/preview), while a second client asks /healthz every
few milliseconds. Every costly template is refused in words (422 from the API, the reason inline on the
dashboard), and the web process keeps answering: the 99th percentile of the /healthz answers is 50 ms at
most, on a small, busy machine.
"""

from __future__ import annotations

import asyncio
import http.client
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from api.auth import login_link
from domain.templates.trial import TRIAL_SECONDS
from storage.database import Database
from storage.queries.staff import staff_by_email
from storage.seeding import SeedPlan, seed_database
from tests.conftest import FreshDatabases, engine_params

TOKEN = "hostile-template-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "hostile-template-session-secret-0123456789"
ADMIN = "admin@northwind.example"
#: The promise: /healthz answers within this, at the 99th percentile, whatever templates are being tried.
HEALTHZ_P99_SECONDS = 0.050
#: How long each costly request is repeated, so the probe sees the server under that load for a while.
PRESSURE_SECONDS = 0.6

#: (what it is, body, words the refusal must contain)
HOSTILE = [
    ("a power of a power", "{{ ((10**1000)**1000)**10 }}", "a number of more than 308 digits"),
    (
        "three nested loops of ten million passes",
        "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(10) %}"
        "{% endfor %}{% endfor %}{% endfor %}",
        "more than 10,000 loop steps",
    ),
    (
        "a macro that doubles its calls",
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
        "does too much work",
    ),
    (
        "captured text that doubles",
        "{% set a %}{{ 'x' * 200000 }}{% endset %}{% set b %}{{ a }}{{ a }}{% endset %}"
        "{% set c %}{{ b }}{{ b }}{% endset %}{{ c|length }}",
        "does too much work",
    ),
    (
        "a list that shares itself twice per pass",
        "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}"
        "{{ ns.l }}",
        "does too much work",
    ),
    (
        "a join with a huge separator",
        "{{ (['x' * 1000] * 1000)|join('y' * 100000)|length }}",
        "too much work",
    ),
    (
        "a long loop body",
        "{% set n = 1 %}{% for i in range(1000) %}" + "{% if n %}{% endif %}" * 500 + "{% endfor %}",
        "more than 1,000,000 characters",
    ),
    ("brackets two thousand deep", "{{ " + "(" * 2000 + "1" + ")" * 2000 + " }}", "nested too deeply"),
    ("a body longer than any message", "{# " + "x" * 60_000 + " #}", "may be at most 50,000"),
]
#: Saved without trouble (the trial render's sample value has six letters), costly with a long typed value.
CUBED = "{% for a in note %}{% for b in note %}{% for c in note %}{% endfor %}{% endfor %}{% endfor %}Noted."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Served:
    """`switchboard serve` in a process of its own, and a dashboard session for the admin."""

    url: str
    sign_in_link: str
    log: Path


@dataclass
class HealthProbe:
    """Asks /healthz every few milliseconds on a thread of its own, over one kept-alive connection."""

    url: str
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> HealthProbe:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _poll(self) -> None:
        host, port = self.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                connection.request("GET", "/healthz")
                answer = connection.getresponse()
                answer.read()
                if answer.status != 200:
                    self.failures.append(f"/healthz answered {answer.status}")
            except OSError as error:
                self.failures.append(f"/healthz failed: {error}")
                connection.close()
            self.latencies.append(time.perf_counter() - started)
            time.sleep(0.005)
        connection.close()

    def summary(self) -> str:
        ordered = sorted(self.latencies)
        return (
            f"/healthz over {len(ordered)} answers: p50 {percentile(ordered, 0.50) * 1000:.1f} ms, "
            f"p99 {percentile(ordered, 0.99) * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms"
        )

    def p99(self) -> float:
        return percentile(sorted(self.latencies), 0.99)


def percentile(ordered: list[float], share: float) -> float:
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@pytest.fixture(scope="module", params=engine_params())
def served(
    request: pytest.FixtureRequest, fresh_databases: FreshDatabases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    database_url = fresh_databases.url(request.param)
    folder = tmp_path_factory.mktemp(f"hostile-{request.param}")
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"

    async def seed() -> int:
        database = Database.connect(database_url)
        try:
            await seed_database(
                database, SeedPlan(customers=30, days=20, seed=1, end_date=date(2026, 11, 20))
            )
            admin = await staff_by_email(database, ADMIN)
            assert admin is not None
            return admin.staff_id
        finally:
            await database.dispose()

    admin_id = asyncio.run(seed())
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_API_TOKEN": TOKEN,
        "SWITCHBOARD_SESSION_SECRET": SECRET,
        "SWITCHBOARD_PUBLIC_URL": public_url,
        "SWITCHBOARD_SANDBOX": "0",
        "SWITCHBOARD_WORKER_IN_PROCESS": "0",
    }
    log = folder / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "switchboard.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=folder,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{public_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, f"switchboard serve stopped:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "switchboard serve did not answer /healthz within 60 s"
            time.sleep(0.2)
        link = login_link(public_url, SecretStr(SECRET), admin_id, 30, datetime.now(UTC))
        yield Served(public_url, link, log)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    assert "Traceback" not in log.read_text(), f"the server logged a traceback:\n{log.read_text()[-4000:]}"


def under_pressure(request: Any, seconds: float = PRESSURE_SECONDS) -> list[httpx.Response]:
    """Send ``request`` again and again for ``seconds``, one at a time; every answer."""
    answers = []
    started = time.monotonic()
    while not answers or time.monotonic() - started < seconds:
        before = time.perf_counter()
        answers.append(request())
        took = time.perf_counter() - before
        assert took < TRIAL_SECONDS + 1, f"the answer took {took:.1f} s"
    return answers


def test_costly_templates_are_refused_while_healthz_keeps_answering(served: Served) -> None:
    refused = 0
    with (
        httpx.Client(base_url=served.url, headers=AUTH, timeout=30) as client,
        HealthProbe(served.url) as probe,
    ):
        for number, (what, body, reason) in enumerate(HOSTILE):
            path = f"/api/templates/hostile_{number}/sms/en"
            for answer in under_pressure(lambda: client.put(path, json={"body": body, "variables": []})):  # noqa: B023
                assert answer.status_code == 422, f"{what}: {answer.status_code} {answer.text[:300]}"
                assert reason in answer.text, f"{what}: {answer.text[:300]}"
                assert "Traceback" not in answer.text and "Error:" not in answer.text, answer.text[:300]
                refused += 1
            assert client.get(path).status_code == 404, f"{what} was saved"
    print(f"\nhostile templates: {refused} saves refused; {probe.summary()}")
    assert not probe.failures, probe.failures[:5]
    assert len(probe.latencies) >= 100, probe.summary()
    assert probe.p99() <= HEALTHZ_P99_SECONDS, probe.summary()


def test_previews_with_costly_values_are_refused_while_healthz_keeps_answering(served: Served) -> None:
    with httpx.Client(base_url=served.url, headers=AUTH, timeout=30) as api:
        saved = api.put("/api/templates/note_cubed/sms/en", json={"body": CUBED, "variables": ["note"]})
        assert saved.status_code == 200, saved.text
        short = api.post(
            "/api/messages/preview",
            json={"template": "note_cubed", "channel": "sms", "variables": {"note": "ab"}},
        )
        assert short.status_code == 200 and short.json()["text"] == "Noted.", short.text
    typed = {"note": "x" * 300}
    page = {
        "preview": "1",
        "template": "note_cubed",
        "channel": "sms",
        "locale": "en",
        "variables": f"note={typed['note']}",
    }
    with httpx.Client(base_url=served.url, timeout=30) as browser:
        signed_in = browser.get(served.sign_in_link)
        assert (signed_in.status_code, signed_in.headers.get("location")) == (303, "/"), signed_in.text[:300]
        with (
            httpx.Client(base_url=served.url, headers=AUTH, timeout=30) as api,
            HealthProbe(served.url) as probe,
        ):
            for answer in under_pressure(lambda: browser.get("/communication/templates", params=page)):
                assert answer.status_code == 200, answer.text[:300]
                notice = answer.text[answer.text.find('class="notice error"') :][:400]
                assert "does too much work" in notice, notice or answer.text[-2000:]
            preview = {"template": "note_cubed", "channel": "sms", "variables": typed}
            for answer in under_pressure(lambda: api.post("/api/messages/preview", json=preview)):
                assert answer.status_code == 422, answer.text[:300]
                assert "more than 10,000 loop steps" in answer.text, answer.text[:300]
    print(f"\ncostly previews: {probe.summary()}")
    assert not probe.failures, probe.failures[:5]
    assert len(probe.latencies) >= 50, probe.summary()
    assert probe.p99() <= HEALTHZ_P99_SECONDS, probe.summary()
