"""A customer rates the conversation an agent resolved, on the demo as `make demo` runs it.

- A customer writes on WhatsApp (in the sandbox); the agent resolves the conversation with `chat resolve`.
- The satisfaction survey reaches the customer's phone (the sandbox) on WhatsApp as a list to tap (they wrote
  minutes ago, so the window is open).
- The customer taps "5 Great" on the sandbox's page, in the browser: the conversation stays resolved with the
  score beside who resolved it, no agent gets work, and the csat KPI counts the answer (recounted from the raw
  rows).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select

from domain.conversations.csat import survey_words
from reports.answer import answer
from reports.periods import PeriodSpec
from reports.query import MetricQuery
from storage.database import Database
from storage.models import ChatSession, Customer, StaffUser
from tests.journeys.conftest import AGENT, Demo, run_async, screenshot, sign_in, wait_for

TZ = "Europe/Berlin"  # the demo business's timezone


def csat_today(demo: Demo) -> float | None:
    async def run() -> float | None:
        database = Database.connect(demo.database_url)
        try:
            today = datetime.now(ZoneInfo(TZ)).date()
            reply = await answer(
                database,
                MetricQuery(("csat",), PeriodSpec.between(today, today)),
                now=datetime.now(UTC),
                business_tz=TZ,
            )
            return reply.result.series[0].total if reply.result.series else None
        finally:
            await database.dispose()

    return run_async(run())


def test_a_resolved_whatsapp_conversation_is_rated_by_its_customer(demo: Demo, browser_page: Any) -> None:
    # A customer who has never written on WhatsApp, so this is a new conversation of its own.
    customer_id, wa_id, locale = demo.rows(
        select(Customer.id, Customer.whatsapp_id, Customer.locale)
        .where(
            Customer.whatsapp_id.is_not(None),
            ~exists().where(ChatSession.customer_id == Customer.id, ChatSession.channel == "whatsapp"),
        )
        .order_by(Customer.id)
        .limit(1),
    )[0]
    # Other journeys on this demo may have opened conversations for them on other channels.
    chats_before = len(demo.rows(select(ChatSession.id).where(ChatSession.customer_id == customer_id)))
    demo.sandbox("POST", "/_sandbox/customer/whatsapp", {"from": wa_id, "body": "Is my prescription ready?"})

    def the_chat() -> Any:
        found = demo.rows(
            select(ChatSession).where(
                ChatSession.customer_id == customer_id, ChatSession.channel == "whatsapp"
            )
        )
        return found[0][0] if found else None

    chat = wait_for(the_chat, 30, "the conversation to open")
    resolved = demo.ask(f"chat resolve {chat.id}", as_email=AGENT)
    assert "resolved" in resolved.text

    words = survey_words(locale)  # asked in the customer's language (the demo's patients are mostly German)

    def survey_on_phone() -> list[dict[str, Any]]:
        return [
            m
            for m in demo.sandbox_messages("whatsapp_cloud")
            if m["direction"] == "outbound"
            and m["to"].lstrip("+") == wa_id.lstrip("+")
            and m["body"].startswith(words.text)
        ]

    [survey] = wait_for(survey_on_phone, 30, "the survey on the customer's WhatsApp")
    # Inside the 24-hour window: free-form, as an interactive list of the five scores.
    assert survey["template"] is None and survey["details"]["type"] == "interactive"
    assert [row["title"] for row in survey["details"]["choices"]] == ["5", "4", "3", "2", "1"]

    # The customer taps "5 Great" under the survey on the sandbox's page.
    browser_page.goto(f"{demo.sandbox_url}/_sandbox/")
    tap = browser_page.locator(
        f'form.buttons:has(input[name="from"][value="{survey["to"]}"]) button[value="csat:5"]'
    )
    assert tap.first.inner_text().strip() == f"5 {words.choices.options[0].description}"  # "5 Sehr gut"
    screenshot(browser_page, "sandbox-whatsapp-csat-list")
    tap.first.click()
    browser_page.wait_for_load_state()
    rated = wait_for(
        lambda: (c := the_chat()) is not None and c.csat_score is not None and c, 30, "the score"
    )
    [(agent_id,)] = demo.rows(select(StaffUser.id).where(StaffUser.email == AGENT))
    assert (rated.csat_score, rated.status, rated.resolved_by_staff_id) == (5, "closed", agent_id)
    assert rated.csat_answered_at is not None
    chats_after = len(demo.rows(select(ChatSession.id).where(ChatSession.customer_id == customer_id)))
    assert chats_after == chats_before + 1, "the score opened no conversation of its own"

    # The agent sees the score on the conversation, and the survey in its timeline with how it went.
    sign_in(browser_page, demo, AGENT)
    browser_page.goto(f"{demo.app_url}/communication/chat/{chat.id}")
    assert "rated 5 of 5" in browser_page.locator(".lead").inner_text()
    survey_turn = browser_page.locator(".conversation li", has_text="Switchboard (automatic)").first
    assert words.text.split("\n")[0][:20] in survey_turn.inner_text()
    assert any(said in survey_turn.inner_text() for said in ("delivered", "read", "sent")), (
        survey_turn.inner_text()
    )
    screenshot(browser_page, "csat-rated-conversation")

    # The KPI from the raw rows: answered surveys of conversations started today (business time).
    def recount() -> float:
        today = datetime.now(ZoneInfo(TZ)).date()
        scores = [
            score
            for score, started in demo.rows(
                select(ChatSession.csat_score, ChatSession.started_at).where(
                    ChatSession.csat_answered_at.is_not(None)
                )
            )
            if started.astimezone(ZoneInfo(TZ)).date() == today
        ]
        return sum(scores) / len(scores)

    # The worker's rollup pass (every minute) brings the answer into the KPI.
    wait_for(lambda: csat_today(demo) == recount() or None, 150, "the csat KPI to count the answer")
