"""The website chat widget in a real browser: a customer writes on the clinic's page, an agent answers from the
web inbox, and the answer appears in the widget without a reload (and comes back confirmed as read); the
customer then sends a PDF, which the agent sees in the conversation."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.e2e.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RunningApp,
    _free_port,
    _prepare_database,
    _require_chromium,
    serving,
)

AGENT = "lena.hoffmann@northwind.example"
#: A one-page PDF, as the attachment rules recognise one by its first bytes.
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
T = TypeVar("T")

pytestmark = pytest.mark.browser


@pytest.fixture
def app_with_worker(tmp_path: Path) -> Iterator[tuple[RunningApp, Path]]:
    """`switchboard serve` with its worker, so replies are handed to the widget as in production."""
    _require_chromium()
    db_file = tmp_path / "widget.db"
    url = f"sqlite+aiosqlite:///{db_file}"
    asyncio.run(_prepare_database(url))
    with_worker = {
        "SWITCHBOARD_WORKER_IN_PROCESS": "1",
        "SWITCHBOARD_SANDBOX": "1",
        "SWITCHBOARD_SANDBOX_PORT": str(_free_port()),
        "SWITCHBOARD_SANDBOX_SMTP_PORT": str(_free_port()),
    }
    # Up to 90 s: with its worker, serve builds the rollups first, which takes a while on a busy machine.
    with serving(tmp_path, url, with_worker, healthy_within=90) as running:
        yield running, db_file


def rows(db_file: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_file) as connection:
        return connection.execute(sql, params).fetchall()


def wait_for(check: Callable[[], T | None], seconds: float, what: str) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"waited {seconds:g} s for {what}")


def login_link(app: RunningApp, email: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "switchboard.cli", "login-link", email, "--minutes", "5"],
        env=app.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_a_customer_chats_from_the_website_and_the_agents_answer_appears_live(
    app_with_worker: tuple[RunningApp, Path],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    app, db_file = app_with_worker
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # A visitor in Vienna whose browser reads German.
            customer = browser.new_context(timezone_id="Europe/Vienna", locale="de-AT").new_page()
            customer.goto(f"{app.base_url}/widget/demo")
            customer.get_by_role("button", name="Chat with us").click()
            panel = customer.get_by_role("dialog", name="Chat")
            expect(panel).to_be_visible()
            expect(panel.get_by_label("Your message").first).to_be_visible()
            panel.get_by_label("Your message").first.fill("Hello from the website, do you open on Saturdays?")
            panel.get_by_role("button", name="Send", exact=True).click()
            expect(panel.locator(".sbw-mine")).to_have_text(
                ["Hello from the website, do you open on Saturdays?"]
            )
            expect(panel.locator(".sbw-waiting")).to_have_count(0)
            token = customer.evaluate("Object.keys(localStorage).map(k => localStorage.getItem(k))[0]")
            assert token

            [(chat_id,)] = wait_for(
                lambda: rows(
                    db_file,
                    "SELECT s.id FROM chat_sessions s JOIN chat_messages m ON m.session_id = s.id "
                    "WHERE s.channel = 'chat' AND m.body LIKE 'Hello from the website%'",
                ),
                15,
                "the conversation on the website chat",
            )
            # Placed as every first contact is: their browser's zone and language, and the first-contact tag.
            assert rows(
                db_file,
                "SELECT c.timezone, c.locale, t.tag FROM chat_sessions s JOIN customers c ON c.id = s.customer_id "
                f"LEFT JOIN customer_tags t ON t.customer_id = c.id WHERE s.id = {chat_id}",
            ) == [("Europe/Vienna", "de", "first-contact:chat")]

            agent = browser.new_context().new_page()
            agent.goto(login_link(app, AGENT))
            agent.goto(f"{app.base_url}/communication/chat/{chat_id}")
            expect(agent.locator(".conversation")).to_contain_text("Hello from the website")
            expect(agent.locator("#reply-route")).to_contain_text("Your reply goes by website chat")
            agent.get_by_label("Reply").fill("Yes, from 9 to 14 on Saturdays.")
            agent.get_by_role("button", name="Send reply").click()
            expect(agent.locator(".notice.ok")).to_contain_text("Your reply")

            # No reload: the answer arrives over the widget's live stream.
            expect(panel.locator(".sbw-theirs")).to_have_text(
                ["Yes, from 9 to 14 on Saturdays."], timeout=20_000
            )
            customer.screenshot(path="/tmp/switchboard-widget.png")

            def confirmed() -> list[tuple[Any, ...]]:
                return rows(
                    db_file,
                    "SELECT channel, provider, status FROM customer_communications "
                    "WHERE direction = 'outbound' AND body = 'Yes, from 9 to 14 on Saturdays.' "
                    "AND status IN ('delivered', 'read')",
                )

            [(channel, provider, _status)] = wait_for(confirmed, 15, "the widget to confirm the reply")
            assert (channel, provider) == ("chat", "internal")
            assert not rows(
                db_file,
                "SELECT id FROM customer_communications WHERE body = 'Yes, from 9 to 14 on Saturdays.' "
                "AND channel != 'chat'",
            ), "the reply went out on another channel too"

            # The customer sends their referral letter (a PDF); the agent's conversation page shows it.
            panel.get_by_label("Attach an image or PDF").set_input_files(
                files=[{"name": "referral.pdf", "mimeType": "application/pdf", "buffer": PDF}]
            )
            expect(panel.locator(".sbw-mine").last).to_have_text("[file: referral.pdf]")
            expect(panel.locator(".sbw-waiting")).to_have_count(0)
            customer.screenshot(path="/tmp/switchboard-widget-file.png")
            [(kept,)] = wait_for(
                lambda: rows(db_file, "SELECT content FROM chat_attachments WHERE filename = 'referral.pdf'"),
                15,
                "the referral kept with the conversation",
            )
            assert kept == PDF
            agent.reload()
            expect(agent.locator(".conversation")).to_contain_text("referral.pdf")

            # A reload shows the history (the token kept in localStorage resumes the same visitor).
            customer.reload()
            customer.get_by_role("button", name="Chat with us").click()
            expect(panel.locator(".sbw-turn")).to_have_text(
                [
                    "Hello from the website, do you open on Saturdays?",
                    "Yes, from 9 to 14 on Saturdays.",
                    "[file: referral.pdf]",
                ]
            )
        finally:
            browser.close()


def test_a_message_sent_before_the_chat_has_opened_waits_for_it_and_arrives(
    app_with_worker: tuple[RunningApp, Path],
) -> None:
    """A slow first answer (a busy server, a phone's network) must not lose what the visitor typed at once:
    the message waits for the conversation's token instead of going without one and being refused."""
    from playwright.sync_api import Route, expect, sync_playwright

    app, db_file = app_with_worker
    held: list[Route] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            customer = browser.new_context().new_page()
            customer.route("**/widget/session", lambda route: held.append(route))
            customer.goto(f"{app.base_url}/widget/demo")
            customer.get_by_role("button", name="Chat with us").click()
            panel = customer.get_by_role("dialog", name="Chat")
            expect(panel.get_by_label("Your message").first).to_be_visible()
            panel.get_by_label("Your message").first.fill("Written before the chat had opened")
            panel.get_by_role("button", name="Send", exact=True).click()
            expect(panel.locator(".sbw-mine.sbw-waiting")).to_have_text(
                ["Written before the chat had opened"]
            )
            wait_for(lambda: held, 10, "the widget asking for its conversation")
            held[0].continue_()
            expect(panel.locator(".sbw-mine")).to_have_text(["Written before the chat had opened"])
            expect(panel.locator(".sbw-waiting")).to_have_count(0, timeout=15_000)
            expect(panel.locator(".sbw-error").first).to_have_text("")
        finally:
            browser.close()
    stored = wait_for(
        lambda: rows(
            db_file,
            "SELECT m.body FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id "
            "WHERE s.channel = 'chat' AND m.body = 'Written before the chat had opened'",
        ),
        15,
        "the message stored once",
    )
    assert stored == [("Written before the chat had opened",)]


def test_a_chat_that_failed_to_open_is_opened_again_by_the_visitor_s_message(
    app_with_worker: tuple[RunningApp, Path],
) -> None:
    """A first opening lost on the way (a phone between masts) is tried again when the visitor writes,
    instead of their message being refused as "expired"."""
    from playwright.sync_api import Route, expect, sync_playwright

    app, db_file = app_with_worker
    tries: list[str] = []

    def flaky(route: Route) -> None:
        tries.append(route.request.url)
        if len(tries) == 1:
            route.abort("connectionfailed")
        else:
            route.continue_()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            customer = browser.new_context().new_page()
            customer.route("**/widget/session", flaky)
            customer.goto(f"{app.base_url}/widget/demo")
            customer.get_by_role("button", name="Chat with us").click()
            panel = customer.get_by_role("dialog", name="Chat")
            expect(panel.locator(".sbw-error").first).not_to_have_text("")
            panel.get_by_label("Your message").first.fill("Are you open tomorrow?")
            panel.get_by_role("button", name="Send", exact=True).click()
            expect(panel.locator(".sbw-mine")).to_have_text(["Are you open tomorrow?"])
            expect(panel.locator(".sbw-waiting")).to_have_count(0, timeout=15_000)
            expect(panel.locator(".sbw-error").first).to_have_text("")
        finally:
            browser.close()
    assert len(tries) == 2
    stored = wait_for(
        lambda: rows(
            db_file,
            "SELECT m.body FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id "
            "WHERE s.channel = 'chat' AND m.body = 'Are you open tomorrow?'",
        ),
        15,
        "the message stored once",
    )
    assert stored == [("Are you open tomorrow?",)]
