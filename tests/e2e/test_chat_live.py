"""The live inbox in a real browser: an agent has the queue and then a conversation open, a customer writes on
WhatsApp (through the signed webhook of a running server), and the new conversation and the new message appear
without a reload; a Resolve pressed in another tab shows in the first; the customer card is beside it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage import migrate
from storage.database import Database
from storage.models import Customer
from storage.seeding import SeedPlan, seed_database
from tests.e2e.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RunningApp,
    _require_chromium,
    serving,
)
from tests.integration.test_chat_live import busiest_customer
from tests.integration.test_webhooks import WA_ID

AGENT = "lena.hoffmann@northwind.example"
APP_SECRET = "e2e-live-whatsapp-secret"
SCREENSHOT = Path("/tmp/switchboard-chat-live.png")

pytestmark = pytest.mark.browser


async def _prepare(url: str) -> str:
    """A seeded database; the customer with the most orders writes on WhatsApp as WA_ID. Their name."""
    await migrate.upgrade(url)
    database = Database.connect(url)
    try:
        await seed_database(
            database, SeedPlan(customers=20, days=30, seed=8, end_date=datetime.now(UTC).date())
        )
        customer_id = await busiest_customer(database)
        async with database.read_sessions() as session:
            customer = await session.get(Customer, customer_id)
            assert customer is not None
            return customer.name
    finally:
        await database.dispose()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[RunningApp, str]]:
    _require_chromium()
    url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    name = asyncio.run(_prepare(url))
    with serving(tmp_path, url, {"SWITCHBOARD_WHATSAPP_APP_SECRET": APP_SECRET}) as running:
        yield running, name


def _login_link(app: RunningApp) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "switchboard.cli", "login-link", AGENT, "--minutes", "5"],
        env=app.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def customer_writes(app: RunningApp, wamid: str, text: str) -> None:
    """What Meta posts when the customer sends a WhatsApp message, signed with the app secret."""
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550783881"},
                            "contacts": [{"wa_id": WA_ID, "profile": {"name": "Customer"}}],
                            "messages": [
                                {
                                    "from": WA_ID,
                                    "id": wamid,
                                    "timestamp": str(int(datetime.now(UTC).timestamp())),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    raw = json.dumps(envelope).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{app.base_url}/webhooks/whatsapp",
        data=raw,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_new_messages_and_conversations_appear_without_reload(app: tuple[RunningApp, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    running, name = app
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(_login_link(running))

            # The queue: a new conversation arrives as a row, and the tab's count goes up.
            page.goto(f"{running.base_url}/communication/chat?view=open")
            open_count = page.locator('[data-live-view="open"] .count')
            before = int(open_count.inner_text())
            page.evaluate("window.notReloaded = true")
            customer_writes(running, "wamid.e2e.1", "Hi, is my parcel on its way?")
            row = page.locator("table[data-live-queue] tr", has_text=name)
            expect(row).to_be_visible(timeout=10_000)
            expect(row).to_have_class("live-new")
            expect(open_count).to_have_text(str(before + 1))
            expect(page.locator("#live-marker")).to_have_text("1 new conversation.")
            assert page.evaluate("window.notReloaded") is True

            # The conversation: the agent has it open, the customer writes, the turn appears.
            row.get_by_role("link", name=name).click()
            expect(page.locator("h1")).to_have_text(f"Chat with {name}")
            expect(page.locator("aside.customer-card")).to_contain_text("Recent orders")
            page.evaluate("window.notReloaded = true")
            hostile = 'Still waiting <img src=x onerror="window.pwned=1"> & thanks'
            customer_writes(running, "wamid.e2e.2", hostile)
            arrived = page.locator("ol.conversation li.from-customer").filter(has_text="Still waiting")
            expect(arrived).to_have_count(1, timeout=10_000)
            expect(arrived.locator(".bubble")).to_have_text(hostile)  # shown as text, never as markup
            assert arrived.locator("img").count() == 0
            expect(page.locator("#live-marker")).to_be_visible()
            expect(page.locator("#live-marker")).to_contain_text(f"New message from {name}")
            assert page.evaluate("window.notReloaded") is True
            assert page.evaluate("window.pwned") is None
            turns = page.locator("ol.conversation li[data-turn-id]")
            ids = [turns.nth(i).get_attribute("data-turn-id") for i in range(turns.count())]
            assert len(ids) == len(set(ids)) == 2, ids  # each turn once

            # Another tab resolves it; the first tab's status line and buttons follow.
            other = context.new_page()
            other.goto(page.url)
            other.get_by_role("button", name="Resolve").click()
            expect(other.get_by_role("status").first).to_contain_text("This conversation is resolved.")
            expect(page.locator("[data-live-status]")).to_have_text("resolved", timeout=10_000)
            expect(page.get_by_role("button", name="Reopen")).to_be_visible()
            expect(page.get_by_role("button", name="Resolve")).to_be_hidden()
            other.close()
            page.locator("#live-marker").click()
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
