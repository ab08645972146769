"""The dashboard in a real browser: Debian chromium driven by Playwright against `switchboard serve`.

Signs in with a login link from `switchboard login-link`, clicks through every communication and analytics
page, previews a template, launches a campaign, and leaves a screenshot in /tmp for a human look.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from storage import migrate
from storage.database import Database
from storage.models import CustomReport
from storage.seeding import SeedPlan, seed_database

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/switchboard-executive.png")
PERFORMANCE_SCREENSHOT = Path("/tmp/switchboard-performance.png")
MANAGER = "markus.brandt@northwind.example"

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class RunningApp:
    base_url: str
    env: dict[str, str]


def _require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests need Debian chromium at {CHROMIUM} under CI=true", pytrace=False)
    pytest.skip(f"Debian chromium is not installed at {CHROMIUM} (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _prepare_database(url: str) -> None:
    await migrate.upgrade(url)
    database = Database.connect(url)
    try:
        await seed_database(
            database, SeedPlan(customers=40, days=40, seed=5, end_date=datetime.now(UTC).date())
        )
        async with database.sessions() as session:
            session.add(
                CustomReport(
                    slug="revenue-by-channel",
                    name="Revenue by channel",
                    shared=True,
                    definition={"query": {"metrics": ["revenue"], "dimensions": ["source_channel"]}},
                )
            )
            await session.commit()
    finally:
        await database.dispose()


def _wait_until_healthy(base_url: str, process: subprocess.Popen[Any], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"switchboard serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"switchboard serve did not become healthy within {seconds:g} s")


@contextmanager
def serving(
    folder: Path, database_url: str, extra_env: dict[str, str] | None = None, *, healthy_within: float = 30
) -> Iterator[RunningApp]:
    """`switchboard serve` on a free port over `database_url` (no worker, no sandbox unless `extra_env` turns
    them on), until the block ends. Its output is discarded: an unread pipe would stall a chatty server."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_WORKER_IN_PROCESS": "0",
        "SWITCHBOARD_SANDBOX": "0",
        "SWITCHBOARD_PUBLIC_URL": base_url,
        **(extra_env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "switchboard.cli", "serve", "--port", str(port)],
        env=env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_healthy(base_url, process, healthy_within)
        yield RunningApp(base_url, env)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def running_app(tmp_path: Path) -> Iterator[RunningApp]:
    _require_chromium()
    url = f"sqlite+aiosqlite:///{tmp_path / 'browser.db'}"
    asyncio.run(_prepare_database(url))
    with serving(tmp_path, url) as app:
        yield app


def _login_link(app: RunningApp) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "switchboard.cli", "login-link", MANAGER, "--minutes", "5"],
        env=app.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_a_manager_signs_in_clicks_through_previews_and_launches(running_app: RunningApp) -> None:
    from playwright.sync_api import expect, sync_playwright

    base = running_app.base_url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/communication/")
            expect(page.locator("h1")).to_have_text("Sign in to Switchboard")

            page.goto(_login_link(running_app))
            expect(page.locator(".staff-name")).to_have_text("Markus Brandt")
            expect(page.locator("header .role")).to_have_text("manager")

            for section, titles in (
                (
                    "communication",
                    [
                        "Messages",
                        "Templates",
                        "Campaigns",
                        "SMS",
                        "Email",
                        "WhatsApp",
                        "Telegram",
                        "Live chat",
                        "Communication analytics",
                    ],
                ),
                (
                    "analytics",
                    ["Executive", "Financial", "Operational", "Customer", "Reports", "Performance"],
                ),
            ):
                for title in titles:
                    page.goto(f"{base}/{section}/")
                    page.locator("ul.pages").get_by_role("link", name=title, exact=True).click()
                    expect(page.locator("h1")).to_have_text(title)
                    if title in (
                        "Executive",
                        "Financial",
                        "Operational",
                        "Customer",
                        "SMS",
                        "Email",
                        "Telegram",
                    ):
                        expect(page.locator("svg.chart").first).to_be_visible()

            # Sibling pages are one click away, and the performance page says plainly that no worker runs.
            page.goto(f"{base}/communication/sms")
            page.locator("nav.subnav").get_by_role("link", name="Telegram", exact=True).click()
            expect(page.locator("h1")).to_have_text("Telegram")
            page.goto(f"{base}/analytics/performance")
            expect(page.locator("#background-headline")).to_contain_text("No worker is running")
            expect(page.locator("#jobs")).to_contain_text("Delivery")
            page.screenshot(path=str(PERFORMANCE_SCREENSHOT), full_page=True)

            page.goto(f"{base}/analytics/reports")
            page.get_by_role("link", name="Revenue by channel").click()
            expect(page.locator("svg.chart")).to_be_visible()
            expect(page.get_by_role("link", name="CSV", exact=True)).to_be_visible()
            expect(page.get_by_role("link", name="XLSX", exact=True)).to_be_visible()

            page.goto(f"{base}/communication/templates")
            preview_form = page.locator("form[action='/communication/templates']")
            preview_form.locator("select[name=template]").select_option("appointment_reminder")
            preview_form.locator("select[name=channel]").select_option("sms")
            preview_form.locator("textarea[name=variables]").fill(
                "first_name=Ada\nservice=Eye test\nclinic=Berlin Mitte\nappointment_time=Tue 10:00"
            )
            page.get_by_role("button", name="Preview").click()
            expect(page.locator("dd.segments")).to_have_text("1")
            expect(page.locator(".preview .bubble")).to_contain_text("Ada")

            page.goto(f"{base}/communication/campaigns")
            page.locator("tr", has_text="draft").get_by_role("link").first.click()
            expect(page.locator("#campaign-status")).to_have_text("draft")
            page.get_by_text("Launch…").click()
            page.get_by_role("button", name="Launch now").click()
            expect(page.locator("#campaign-status")).to_have_text("running")
            expect(page.get_by_role("button", name="Pause")).to_be_visible()

            page.goto(f"{base}/analytics/executive")
            expect(page.locator("svg.chart").first).to_be_visible()
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            # On a phone the page is no wider than the screen, and a chart keeps a readable width (it
            # scrolls inside its box) rather than shrinking its text to a third.
            page.set_viewport_size({"width": 390, "height": 844})
            for path in ("/analytics/executive", "/communication/analytics", "/communication/sms"):
                page.goto(f"{base}{path}")
                expect(page.locator("svg.chart").first).to_be_visible()
                widths = page.evaluate(
                    "() => [document.documentElement.scrollWidth,"
                    " document.querySelector('svg.chart').getBoundingClientRect().width,"
                    " document.querySelector('figure.chart-box').getBoundingClientRect().right]"
                )
                page_width, chart_width, box_right = widths
                assert page_width <= 390 and box_right <= 390, (path, widths)
                assert chart_width >= 600, (path, widths)
            for path in ("/communication/templates", "/communication/campaigns", "/analytics/reports"):
                # Tables scroll inside themselves; nothing in them (hidden labels included) widens the page.
                page.goto(f"{base}{path}")
                assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, path
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
