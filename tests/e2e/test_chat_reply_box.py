"""The conversation page's reply box in a real browser: the canned-reply picker (search, choose, fill what only
the agent knows, insert), a send, and a manager adding a canned reply the picker then offers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from storage import migrate
from storage.database import Database
from storage.models import ChatMessage, ChatSession, Customer, CustomerCommunication
from storage.seeding import SeedPlan, seed_database
from tests.e2e.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RunningApp,
    _require_chromium,
    serving,
)

MANAGER = "markus.brandt@northwind.example"
SCREENSHOT = Path("/tmp/switchboard-reply-box.png")

pytestmark = pytest.mark.browser


async def _prepare(url: str) -> int:
    await migrate.upgrade(url)
    database = Database.connect(url)
    try:
        await seed_database(
            database, SeedPlan(customers=20, days=20, seed=6, end_date=datetime.now(UTC).date())
        )
        now = datetime.now(UTC)
        async with database.sessions() as session:
            customer = Customer(name="Ada Lovelace", phone_e164="+4915100000088", timezone="Europe/Berlin")
            session.add(customer)
            await session.flush()
            chat = ChatSession(
                customer_id=customer.id,
                channel="sms",
                status="open",
                started_at=now - timedelta(minutes=5),
                last_message_at=now - timedelta(minutes=5),
            )
            session.add(chat)
            await session.flush()
            session.add(
                ChatMessage(session_id=chat.id, author="customer", body="Can I come later?", created_at=now)
            )
            await session.commit()
            return chat.id
    finally:
        await database.dispose()


@pytest.fixture
def app_with_chat(tmp_path: Path) -> Iterator[tuple[RunningApp, int]]:
    _require_chromium()
    url = f"sqlite+aiosqlite:///{tmp_path / 'reply-box.db'}"
    chat_id = asyncio.run(_prepare(url))
    with serving(tmp_path, url) as running:
        yield running, chat_id


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


async def _sent_bodies(url: str) -> list[str]:
    database = Database.connect(url)
    try:
        async with database.read_sessions() as session:
            return list(
                await session.scalars(
                    select(CustomerCommunication.body).where(
                        CustomerCommunication.to_address == "+4915100000088"
                    )
                )
            )
    finally:
        await database.dispose()


def test_the_picker_fills_a_canned_reply_and_a_manager_adds_one(
    app_with_chat: tuple[RunningApp, int],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    app, chat_id = app_with_chat
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on(
                "console",
                lambda m: errors.append(m.text) if m.type == "error" and "422" not in m.text else None,
            )
            page.goto(_login_link(app))
            page.goto(f"{app.base_url}/communication/chat/{chat_id}")

            page.locator("details.canned summary").click()
            page.get_by_label("Shortcut or title").fill("res")
            page.get_by_role("button", name="Search").click()
            picker = page.locator("ul.canned-list")
            expect(picker).to_contain_text("/reschedule")
            expect(picker).to_contain_text("/results")
            picker.get_by_role("link", name="/reschedule").click()
            expect(page.locator("#canned-inserted")).to_contain_text("Still to fill: {new_time}.")
            page.get_by_role("textbox", name="{new_time}", exact=True).fill("Friday at 10:30")
            page.get_by_role("button", name="Fill in").click()
            box = page.get_by_label("Reply or note")
            expect(box).to_have_value(
                "Hi Ada, no problem: I can move your appointment to Friday at 10:30. Shall I book that for you?"
            )
            # What the agent typed is posted: it is not in the address bar, the history or the access log.
            assert "Friday" not in page.url and "new_time" not in page.url, page.url
            reopened = page.request.get(page.url)  # that address opened again: the conversation, not a 405
            assert reopened.ok and reopened.url.endswith(f"/communication/chat/{chat_id}"), reopened.url
            page.get_by_role("button", name="Send reply").click()
            expect(page.locator("p.notice.ok")).to_contain_text("Your reply is queued")
            sent = page.locator("ol.conversation li.from-us").filter(has_text="Friday at 10:30")
            expect(sent.locator(".delivery")).to_have_text("queued")

            page.locator("details.canned summary").click()
            page.get_by_role("link", name="Manage canned replies").click()
            expect(page.locator("h1")).to_have_text("Canned replies")
            page.get_by_label("Shortcut").fill("parking")
            page.get_by_label("Title").fill("Parking")
            page.get_by_label("Text").fill(
                "Hi {first_name}, park behind {clinic}; the barrier opens at {barrier_time}."
            )
            page.get_by_role("button", name="Save").click()
            expect(page.get_by_role("status")).to_contain_text("The canned reply is saved.")
            expect(page.locator("table")).to_contain_text("{first_name}, {clinic}, {barrier_time}")

            page.goto(f"{app.base_url}/communication/chat/{chat_id}?canned=park")
            page.locator("ul.canned-list").get_by_role("link", name="/parking").click()
            # Ada has no home clinic: {clinic} is the agent's to fill too, and the send refuses it unfilled
            expect(page.locator("#canned-inserted")).to_contain_text(
                "Still to fill: {clinic} and {barrier_time}."
            )
            page.get_by_role("button", name="Send reply").click()
            expect(page.get_by_role("alert")).to_contain_text(
                "Fill in {clinic} and {barrier_time} before sending"
            )
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    bodies = asyncio.run(_sent_bodies(app.env["SWITCHBOARD_DATABASE_URL"]))
    assert bodies == [
        "Hi Ada, no problem: I can move your appointment to Friday at 10:30. Shall I book that for you?"
    ]
