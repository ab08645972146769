"""A clinic's first hour with Switchboard, on a demo started the way a hurried new user starts it: `migrate`,
`seed`, then straight to `serve` without `rollups rebuild`.

The manager asks questions in chat and gets charts, the numbers say which currency they are in and what
they are compared with, `status` names every background job, the seeded history ends now, and every page
of the dashboard reads as words: no tracebacks, no raw values, no promises it does not keep.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from storage.analytics.rollup_store import read_watermark
from storage.database import Database
from storage.models import CustomerCommunication
from tests.integration.test_seed_timeline import _later_than
from tests.journeys.conftest import (
    MANAGER,
    SWITCHBOARD,
    Demo,
    no_tracebacks,
    run_async,
    screenshot,
    sign_in,
    start_demo,
    stop_demo,
    wait_for,
)

PAGES = [
    "/",
    "/communication/",
    "/communication/messages",
    "/communication/templates",
    "/communication/campaigns",
    "/communication/sms",
    "/communication/email",
    "/communication/whatsapp",
    "/communication/telegram",
    "/communication/chat",
    "/communication/analytics",
    "/analytics/",
    "/analytics/executive",
    "/analytics/financial",
    "/analytics/operational",
    "/analytics/customer",
    "/analytics/reports",
    "/analytics/performance",
]
#: What a person must never read on a page: Python's own words and raw values.
RAW = re.compile(r"Traceback|\bNone\b|\[\s*'|\{'|<function|object at 0x|\b1[6-9]\d{8}(\.\d+)?\b")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("first-day")
    running = start_demo(folder, f"sqlite+aiosqlite:///{folder / 'switchboard.db'}", rebuild_rollups=False)
    try:
        yield running
        no_tracebacks(running)
    finally:
        stop_demo(running)


def read(demo: Demo, work: Any) -> Any:
    async def run() -> Any:
        database = Database.connect(demo.database_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return run_async(run())


def test_serve_builds_the_rollups_nobody_rebuilt(demo: Demo) -> None:
    async def watermark(database: Database) -> Any:
        async with database.read_sessions() as session:
            return await read_watermark(session)

    built = wait_for(lambda: read(demo, watermark), 90, "the background job to build the rollups")
    assert built.timezone == "Europe/Berlin" and "currency" in (built.dimensions or {}).get("revenue", ())
    assert "rollups were missing" in demo.server_log()


def test_the_seeded_history_ends_now(demo: Demo) -> None:
    now = datetime.now(UTC) + timedelta(seconds=2)
    assert read(demo, lambda database: _later_than(database, now)) == {}

    async def newest(database: Database) -> Any:
        async with database.read_sessions() as session:
            return await session.scalar(
                select(CustomerCommunication.created_at)
                .order_by(CustomerCommunication.created_at.desc())
                .limit(1)
            )

    # The clinics' traffic follows their hours: early on a Sunday the newest message is Saturday afternoon's
    # (a run at 04:36 UTC on a Sunday saw 16 h). Three days still tells a history that ends now from one
    # that stopped when the seed was written.
    assert datetime.now(UTC) - read(demo, newest) < timedelta(days=3)


def test_status_names_every_background_job_with_its_age(demo: Demo) -> None:
    jobs = ("Delivery", "Campaign planning", "Notifications", "Report scheduler", "Rollups")

    def reported() -> dict[str, str] | None:
        fields = {f.label: f.value for f in demo.ask("status").fields}
        return fields if all("last success" in fields.get(job, "") for job in jobs) else None

    fields = wait_for(reported, 60, "every background job's first heartbeat")
    for job in jobs:
        assert fields[job].startswith("ok") and "ago" in fields[job], (job, fields[job])


QUESTIONS = [
    ("how many appointments did Berlin have last month", "Appointments"),
    ("what is our chat resolution time this month", "Resolution time"),
    ("revenue this month vs last month", "Revenue"),
    ("no-show rate last quarter by service", "No-show rate"),
    ("communication cost last month", "Communication cost"),
]


def test_a_manager_asks_five_questions_and_gets_five_charts(demo: Demo) -> None:
    for question, title in QUESTIONS:
        reply = demo.ask(question, as_email=MANAGER)
        assert reply.kind == "answer" and reply.title == title, (question, reply.text)
        assert reply.images and reply.images[0].content.startswith(b"\x89PNG"), question
        assert any(f.label == "Read as" for f in reply.fields), question

    compared = demo.ask("revenue this month vs last month", as_email=MANAGER)
    read_as = next(f.value for f in compared.fields if f.label == "Read as")
    assert "the same days last month" in read_as or "all of last month" in read_as, read_as
    assert "so far" in compared.text

    cost = demo.ask("communication cost last month", as_email=MANAGER)
    assert "US$" in cost.text and "€" not in cost.text, cost.text  # provider prices are in dollars

    empty = demo.ask("kpi csat this month", as_email=MANAGER)
    assert empty.kind == "answer" and "0.0" not in empty.text


def test_the_command_line_answers_without_a_traceback(demo: Demo, tmp_path: Path) -> None:
    for question in (
        "top 5 customers by revenue",
        "how many appointments did Berlin have last month",
        "asdf qwer",
    ):
        done = subprocess.run(
            [*SWITCHBOARD, "ask", question, "--out", str(tmp_path)],
            env=demo.env,
            cwd=demo.folder,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stdout + done.stderr and "SAWarning" not in done.stderr, done.stderr


def test_every_page_reads_as_words(demo: Demo, browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    sign_in(page, demo, MANAGER)
    for path in PAGES:
        response = page.goto(f"{demo.app_url}{path}")
        assert response is not None and response.status == 200, path
        text = page.locator("main").inner_text()
        raw = RAW.search(text)
        assert raw is None, (
            f"{path} shows {raw.group(0)!r}: …{text[max(0, raw.start() - 80) : raw.end() + 80]}…"
        )
        screenshot(page, "page" + path.replace("/", "-").rstrip("-"))

    page.goto(f"{demo.app_url}/analytics/performance")
    body = page.locator("main").inner_text()
    for words in ("Send rate", "Oldest due message", "Webhook", "Delivery"):
        assert words.lower() in body.lower(), f"performance page lacks {words!r}"

    page.goto(f"{demo.app_url}/communication/telegram")
    expect(page.locator("h1")).to_have_text("Telegram")

    # The messages list is newest first, and a customer is found by part of their name.
    page.goto(f"{demo.app_url}/communication/messages")
    times = page.locator("table tbody tr td.nowrap").all_inner_texts()
    assert times, "the messages list is empty"
    name = page.locator("table tbody tr").first.locator("td").nth(1).inner_text().split()[0]
    page.goto(f"{demo.app_url}/communication/messages?customer={name}")
    assert page.locator("table tbody tr").count() > 0
