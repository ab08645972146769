"""A freshly seeded demo, run the way a new user runs it, for journey tests.

`demo` migrates and seeds a small Northwind demo through the `switchboard` command line, rebuilds the
rollups, and starts `switchboard serve` with the provider sandbox and the background work in-process, on
free ports. A journey then walks one person's story through the public entry points: the bot's command
language (`Demo.ask`, the console layer that `switchboard ask` and the chat front ends share, or the CLI
itself), the JSON API, the sandbox over HTTP (what the customer's phone or mailbox sees) and the
browser (Debian chromium through Playwright).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.commands.context import CommandContext
from bot.console import ask as console_ask
from bot.console import render_reply
from bot.replies import Reply
from storage.database import Database
from switchboard.settings import Settings
from tests.conftest import FreshDatabases

SWITCHBOARD = [sys.executable, "-m", "switchboard.cli"]
API_TOKEN = "journey-api-token"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("SWITCHBOARD_SCREENSHOTS", "/tmp/switchboard-journeys"))
ADMIN = "admin@northwind.example"
MANAGER = "markus.brandt@northwind.example"
AGENT = "lena.hoffmann@northwind.example"
VIEWER = "finance@northwind.example"
DEMO_CUSTOMERS = 60
DEMO_DAYS = 60

T = TypeVar("T")


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on its own loop in another thread (Playwright's sync API keeps a loop
    running in this one)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(check: Callable[[], T | None], limit: float, what: str) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `limit` seconds."""
    deadline = time.monotonic() + limit
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError, KeyError) as error:
            last_error = error
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {limit:.0f} s waiting for {what} (last error: {last_error})"
            )
        time.sleep(0.25)


@dataclass
class Demo:
    """A running demo: the web app, the sandbox, the database, and the environment they were started with."""

    app_url: str
    sandbox_url: str
    database_url: str
    env: dict[str, str]
    folder: Path
    server: subprocess.Popen[str]

    # --- the command line and the bot's language -------------------------------------------------

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SWITCHBOARD, *args],
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ask(self, text: str, as_email: str = ADMIN) -> Reply:
        """One command through the console layer every front end shares, as `as_email`."""

        async def run() -> Reply:
            database = Database.connect(self.database_url)
            try:
                ctx = CommandContext(self.settings(), database)
                return await console_ask(ctx, text, as_email=as_email)
            finally:
                await database.dispose()

        reply = run_async(run())
        shown = render_reply(reply)
        assert "Traceback" not in shown and "something went wrong" not in shown, f"{text!r} -> {shown}"
        return reply

    def rows(self, statement: Any) -> list[Any]:
        """The rows a read of the demo's database gives (what the test checks against what it saw)."""

        async def run() -> list[Any]:
            database = Database.connect(self.database_url)
            try:
                async with database.read_sessions() as session:
                    return list((await session.execute(statement)).all())
            finally:
                await database.dispose()

        return run_async(run())

    def settings(self) -> Settings:
        return Settings(
            database_url=self.database_url,
            public_url=self.app_url,
            api_token=API_TOKEN,
            sandbox_port=int(self.env["SWITCHBOARD_SANDBOX_PORT"]),
            sandbox_smtp_port=int(self.env["SWITCHBOARD_SANDBOX_SMTP_PORT"]),
        )

    # --- HTTP ----------------------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None, *, expect: int | None = None) -> Any:
        """The JSON API with the bearer token; returns the decoded answer (raises on 4xx/5xx unless expected)."""
        status, answer = http_json(method, f"{self.app_url}{path}", body, token=API_TOKEN)
        if expect is not None:
            assert status == expect, f"{method} {path}: {status} {answer}"
        elif status >= 400:
            raise AssertionError(f"{method} {path}: {status} {answer}")
        return answer

    def sandbox(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = http_json(method, f"{self.sandbox_url}{path}", body)
        assert status < 400, f"sandbox {method} {path}: {status} {answer}"
        return answer

    def sandbox_messages(self, provider: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.sandbox("GET", f"/_sandbox/messages?provider={provider}")[
            "messages"
        ]
        return messages

    def sandbox_emails(self) -> list[dict[str, Any]]:
        emails: list[dict[str, Any]] = self.sandbox("GET", "/_sandbox/emails")["emails"]
        return emails

    def login_link(self, email: str) -> str:
        done = self.cli("login-link", email, "--minutes", "10")
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def server_log(self) -> str:
        return (self.folder / "serve.log").read_text(errors="replace")


def http_json(method: str, url: str, body: Any = None, *, token: str | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw) if raw else None
        except ValueError:
            return error.code, raw.decode(errors="replace")


def start_demo(folder: Path, database_url: str, *, rebuild_rollups: bool = True, **extra_env: str) -> Demo:
    """migrate, seed, rollups rebuild, then `serve` with the sandbox and the worker, as `make demo` does.

    rebuild_rollups=False starts `serve` straight after `seed`, as a user who skips the rebuild would."""
    web, sandbox, smtp = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_PUBLIC_URL": f"http://127.0.0.1:{web}",
        "SWITCHBOARD_API_TOKEN": API_TOKEN,
        "SWITCHBOARD_SANDBOX": "1",
        "SWITCHBOARD_SANDBOX_PORT": str(sandbox),
        "SWITCHBOARD_SANDBOX_SMTP_PORT": str(smtp),
        "SWITCHBOARD_WORKER_IN_PROCESS": "1",
        "SWITCHBOARD_LOG_LEVEL": "INFO",
        **extra_env,
    }
    for name in list(env):  # the demo derives every provider endpoint from the sandbox's ports
        if name.endswith("_BASE_URL") or name == "SWITCHBOARD_SMTP_PORT":
            env.pop(name)
    steps = [
        ["migrate"],
        ["seed", "--customers", str(DEMO_CUSTOMERS), "--days", str(DEMO_DAYS), "--if-empty"],
    ]
    if rebuild_rollups:
        steps.append(["rollups", "rebuild"])
    for step in steps:
        done = subprocess.run(
            [*SWITCHBOARD, *step], env=env, cwd=folder, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"switchboard {' '.join(step)}: {done.stderr}"
    log = (folder / "serve.log").open("w")
    server = subprocess.Popen(
        [*SWITCHBOARD, "serve", "--host", "127.0.0.1", "--port", str(web)],
        env=env,
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    demo = Demo(f"http://127.0.0.1:{web}", f"http://127.0.0.1:{sandbox}", database_url, env, folder, server)
    try:
        wait_for(lambda: http_json("GET", f"{demo.app_url}/healthz")[0] == 200, 60, "switchboard serve")
        wait_for(lambda: http_json("GET", f"{demo.sandbox_url}/_sandbox/stats")[0] == 200, 60, "the sandbox")
    except BaseException:
        stop_demo(demo)
        raise
    return demo


def stop_demo(demo: Demo) -> None:
    demo.server.terminate()
    try:
        demo.server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        demo.server.kill()


def no_tracebacks(demo: Demo) -> None:
    log = demo.server_log()
    assert "Traceback" not in log, f"the server logged a traceback:\n{log[-4000:]}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """A fresh SQLite demo per journey module (what `make demo` runs)."""
    folder = tmp_path_factory.mktemp("demo")
    running = start_demo(folder, f"sqlite+aiosqlite:///{folder / 'switchboard.db'}")
    try:
        yield running
        no_tracebacks(running)
    finally:
        stop_demo(running)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def demo_on_each_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fresh_databases: FreshDatabases
) -> Iterator[Demo]:
    """The same demo on SQLite and on PostgreSQL, for journeys that must hold on both."""
    yield from demo_on_engine(request, tmp_path_factory, fresh_databases, "demo")


def demo_on_engine(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fresh_databases: FreshDatabases,
    name: str,
    **options: Any,
) -> Iterator[Demo]:
    """A demo on the engine `request.param` names (skipped when SWITCHBOARD_TEST_ENGINES leaves it out)."""
    engines = os.environ.get("SWITCHBOARD_TEST_ENGINES", "sqlite,postgresql").split(",")
    if request.param not in engines:
        pytest.skip(f"{request.param} is not among SWITCHBOARD_TEST_ENGINES")
    folder = tmp_path_factory.mktemp(f"{name}-{request.param}")
    running = start_demo(folder, fresh_databases.url(request.param), **options)
    try:
        yield running
        no_tracebacks(running)
    finally:
        stop_demo(running)


def require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser journeys need Debian chromium at {CHROMIUM} under CI=true", pytrace=False)
    pytest.skip(f"Debian chromium is not installed at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture
def browser_page(demo: Demo) -> Iterator[Any]:
    """A Playwright page in Debian chromium; console errors fail the journey."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda message: errors.append(message.text) if _is_error(message) else None)
            yield page
        finally:
            browser.close()
    assert not errors, f"the browser console logged errors: {errors}"


#: A form answered 422 with its errors shown is deliberate; Chromium still logs the status as an error.
_DELIBERATE = "the server responded with a status of 422"


def _is_error(message: Any) -> bool:
    return bool(message.type == "error" and _DELIBERATE not in message.text)


def sign_in(page: Any, demo: Demo, email: str) -> None:
    page.goto(demo.login_link(email))
    page.wait_for_load_state()
    assert "/login" not in page.url, f"sign-in as {email} failed: {page.url}"


def record_at_desk(page: Any, channel: str, said: str, how: str, note: str = "") -> None:
    """On a customer's page, records what they told the desk with the page's consent form, as staff do."""
    page.get_by_text("Record what they told you").click()
    form = page.locator("#consent-form")
    form.get_by_label("Channel").select_option(channel)
    form.get_by_label("They said").select_option(said)
    form.get_by_label("How").select_option(how)
    if note:
        form.get_by_label("Note (optional)").fill(note)
    form.get_by_role("button", name="Record").click()
    page.wait_for_load_state()
    assert "Recorded in the consent ledger." in page.content()


def screenshot(page: Any, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
