"""A patient who has texted the clinic asks first for a copy of their data, then to be forgotten: the export
holds what they wrote, the erasure removes it from the message log and the conversation in the browser, and
the clinic's figures stay the same. Then the clinic keeps message texts for 30 days only, and then its
messages for a month only."""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.console import render_reply
from bot.replies import Reply
from storage.message_months import month_of
from storage.models import (
    ChatSession,
    CommunicationAnalytics,
    Customer,
    CustomerCommunication,
    MessageStatusEvent,
    Order,
)
from tests.journeys.conftest import ADMIN, SWITCHBOARD, Demo, browser_page, screenshot, sign_in, wait_for

__all__ = ["browser_page"]

QUESTION = "Do I need to fast before my blood test on Friday?"


def test_a_patient_sees_their_data_and_is_then_forgotten(demo: Demo, browser_page) -> None:  # type: ignore[no-untyped-def]
    customer_id, name, phone = demo.rows(
        select(Customer.id, Customer.name, Customer.phone_e164)
        .where(Customer.phone_e164.is_not(None))
        .order_by(Customer.id.desc())
        .limit(1),
    )[0]
    demo.sandbox("POST", "/_sandbox/customer/sms", {"from": phone, "body": QUESTION})

    def their_chat() -> list[int]:
        return [
            chat_id
            for (chat_id,) in demo.rows(
                select(ChatSession.id)
                .join(CustomerCommunication, CustomerCommunication.customer_id == ChatSession.customer_id)
                .where(ChatSession.customer_id == customer_id, CustomerCommunication.body == QUESTION)
                .order_by(ChatSession.id.desc())
                .limit(1)
            )
        ]

    [chat_id] = wait_for(their_chat, 30, "the patient's question in a conversation")

    # 1. The copy of their data.
    bundle = demo.folder / "patient.zip"
    exported = demo.cli("customer", "export", "--phone", phone, "--out", str(bundle))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith(f"wrote everything held about customer {customer_id} to {bundle}: ")
    with zipfile.ZipFile(bundle) as archive:
        held = json.loads(archive.read("customer.json"))
    assert held["customer"][0]["name"] == name
    assert QUESTION in [m["body"] for m in held["messages"]]

    def figures() -> tuple[int, int, int]:
        cc = CustomerCommunication
        return demo.rows(
            select(
                select(func.count())
                .select_from(cc)
                .where(cc.status.not_in(["planned", "suppressed"]))
                .scalar_subquery(),
                select(func.count()).select_from(Customer).scalar_subquery(),
                select(func.coalesce(func.sum(Order.amount_minor), 0)).scalar_subquery(),
            )
        )[0]

    before = figures()

    # Twilio holds their question in the account's logs (the sandbox is Twilio here).
    def at_twilio() -> list[dict[str, Any]]:
        return [m for m in demo.sandbox_messages("twilio") if m["body"] == QUESTION and m["sender"] == phone]

    assert len(at_twilio()) == 1

    # 2. Forgotten.
    erased = demo.cli("customer", "erase", "--phone", phone, "--yes")
    assert erased.returncode == 0, erased.stderr
    assert erased.stdout.startswith(f"erased customer {customer_id}: ")
    assert "Traceback" not in erased.stdout + erased.stderr
    # ...and so is Twilio's record of it (their seeded history was never sent through the sandbox: the
    # sandbox answers 404 for those, counted as records it no longer had).
    assert at_twilio() == []
    twilio_line = next(line for line in erased.stdout.splitlines() if line.startswith("Twilio: "))
    assert " deleted from the account's logs" in twilio_line
    assert int(twilio_line.split()[1]) >= 1
    assert demo.rows(select(Customer.name, Customer.phone_e164).where(Customer.id == customer_id)) == [
        (f"Erased customer {customer_id}", None)
    ]
    assert figures() == before
    again = demo.cli("customer", "erase", str(customer_id), "--yes")
    assert again.returncode == 0 and "was already erased on" in again.stdout

    page = browser_page
    sign_in(page, demo, ADMIN)
    page.goto(f"{demo.app_url}/communication/messages?customer_id={customer_id}")
    page.wait_for_load_state()
    screenshot(page, "erased-patient-message-log")
    log = page.inner_text("main")
    assert f"Erased customer {customer_id}" in log and "(erased)" in log
    assert QUESTION not in log and name not in log and phone not in log

    page.goto(f"{demo.app_url}/communication/chat/{chat_id}")
    page.wait_for_load_state()
    screenshot(page, "erased-patient-conversation")
    conversation = page.inner_text("main")
    assert f"Erased customer {customer_id}" in conversation and "(erased)" in conversation
    assert QUESTION not in conversation and name not in conversation and phone not in conversation

    # 3. Staff who try to message them are told why nothing goes.
    answer = demo.api(
        "POST",
        "/api/messages",
        {"customer_id": customer_id, "channel": "sms", "body": "Are you still there?"},
    )
    assert "no sms address" in json.dumps(answer).lower(), answer


def without_clock(text: str) -> str:
    """A page's text without the times of day it shows (its "as of" stamp moves on by the minute)."""
    return re.sub(r"\b\d{1,2}:\d{2}\b", "hh:mm", text)


def in_words(reply: Reply) -> str:
    """A reply as text without its chart's line and times of day: the chart is stamped with the time it was
    drawn (so its size changes when the minute does, or a rebuilt rollup's time), and so may the text."""
    text = "\n".join(line for line in render_reply(reply).splitlines() if "[image]" not in line)
    return without_clock(text)


def retention(demo: Demo, **settings: str) -> subprocess.CompletedProcess[str]:
    """`switchboard retention` with these settings, as an operator runs it on the demo."""
    return subprocess.run(
        [*SWITCHBOARD, "retention"],
        env={**demo.env, **settings},
        cwd=demo.folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_clinic_keeps_message_texts_for_30_days(demo: Demo, browser_page) -> None:  # type: ignore[no-untyped-def]
    cc = CustomerCommunication
    cutoff = datetime.now(UTC) - timedelta(days=30)
    ripe = demo.rows(
        select(func.count()).where(
            cc.created_at < cutoff, cc.status.not_in(["planned", "sending"]), cc.body.not_in(["(erased)"])
        )
    )[0][0]
    customer_id = demo.rows(
        select(cc.customer_id)
        .where(
            cc.created_at < cutoff, cc.customer_id.in_(select(cc.customer_id).where(cc.created_at > cutoff))
        )
        .limit(1)
    )[0][0]
    statuses_before = demo.rows(select(cc.status, func.count()).group_by(cc.status).order_by(cc.status))
    assert ripe > 0

    done = retention(demo, SWITCHBOARD_MESSAGE_BODY_RETENTION_DAYS="30")
    assert done.returncode == 0, done.stderr
    assert f"message bodies: blanked {ripe:,} created before {cutoff:%Y-%m-%d}" in done.stdout
    assert "conversation texts: kept (SWITCHBOARD_CONVERSATION_RETENTION_DAYS=0)" in done.stdout
    assert demo.rows(select(func.count()).where(cc.created_at < cutoff, cc.body == "(expired)"))[0][0] == ripe
    assert (
        demo.rows(select(cc.status, func.count()).group_by(cc.status).order_by(cc.status)) == statuses_before
    )

    page = browser_page
    sign_in(page, demo, ADMIN)
    page.goto(f"{demo.app_url}/communication/messages?customer_id={customer_id}")
    page.wait_for_load_state()
    screenshot(page, "message-log-after-retention")
    rows = page.locator("table tbody tr").all_inner_texts()
    assert any("(expired)" in row for row in rows), rows
    assert any("(expired)" not in row and "(erased)" not in row for row in rows), rows


def test_the_clinic_keeps_messages_for_one_month_and_its_figures_stay(demo: Demo, browser_page) -> None:  # type: ignore[no-untyped-def]
    """SWITCHBOARD_MESSAGE_RETENTION_MONTHS=1 on the demo's 60 days of history: the messages of every month
    that ended more than a month ago go, with their status history; the daily figures and the SMS page's
    totals built on them stay, and so do KPI answers, also about the months that went and after the rollups
    are rebuilt, and the check of the daily figures still adds up. (Runs last here: it removes part of the
    demo's history.)"""
    cc = CustomerCommunication
    now = datetime.now(UTC)
    boundary = month_of(now, -1)
    ripe = demo.rows(select(func.count()).where(cc.created_at < boundary))[0][0]
    kept = demo.rows(select(func.count()).where(cc.created_at >= boundary))[0][0]
    history_kept = demo.rows(
        select(func.count())
        .select_from(MessageStatusEvent)
        .where(MessageStatusEvent.message_created_at >= boundary)
    )[0][0]
    figures = demo.rows(
        select(func.sum(CommunicationAnalytics.sent), func.sum(CommunicationAnalytics.delivered))
    )
    # KPI answers: a period after the boundary keeps its answer.
    answer = in_words(demo.ask("messages sent this month"))
    sixty_days = in_words(demo.ask("messages sent last 60 days"))
    sixty_days_by_week = in_words(demo.ask("messages sent last 60 days by week"))
    checked = demo.cli("analytics", "verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    if ripe == 0:  # on the 30th or 31st, last month's first day can lie before the demo's 60 days
        pytest.skip(f"the demo holds no message from before {boundary:%Y-%m-%d}")
    assert kept > 0

    page = browser_page
    sign_in(page, demo, ADMIN)
    page.goto(f"{demo.app_url}/communication/sms")
    page.wait_for_load_state()
    sms_page = without_clock(page.locator("main").inner_text())

    done = retention(demo, SWITCHBOARD_MESSAGE_RETENTION_MONTHS="1")
    assert done.returncode == 0, done.stderr
    assert (
        f"messages: dropped {ripe:,} created before {boundary:%Y-%m-%d} with their status history"
        in done.stdout
    )
    # Recounted from the rows: everything before the boundary went, with its history; the rest stayed.
    assert demo.rows(select(func.count()).where(cc.created_at < boundary))[0][0] == 0
    assert demo.rows(select(func.count()).select_from(cc))[0][0] == kept
    assert demo.rows(select(func.count()).select_from(MessageStatusEvent))[0][0] == history_kept
    assert (
        demo.rows(select(func.sum(CommunicationAnalytics.sent), func.sum(CommunicationAnalytics.delivered)))
        == figures
    )
    assert in_words(demo.ask("messages sent this month")) == answer
    # A period reaching before the boundary keeps its answer too: the rollups keep what they counted of the
    # months that went, also when rebuilt (as an upgrade that adds a metric does), and by week as by day.
    assert in_words(demo.ask("messages sent last 60 days")) == sixty_days
    rebuilt = demo.cli("rollups", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert in_words(demo.ask("messages sent last 60 days")) == sixty_days
    assert in_words(demo.ask("messages sent last 60 days by week")) == sixty_days_by_week
    # The check of the daily figures against the messages still adds up: the dropped messages' figures were
    # set aside as they went.
    checked = demo.cli("analytics", "verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "drift: 0" in checked.stdout
    assert "and the figures set aside for messages retention removed" in checked.stdout

    page.goto(f"{demo.app_url}/communication/sms")
    page.wait_for_load_state()
    screenshot(page, "sms-page-after-dropping-old-months")
    assert without_clock(page.locator("main").inner_text()) == sms_page
    again = retention(demo, SWITCHBOARD_MESSAGE_RETENTION_MONTHS="1")
    assert f"messages: dropped 0 created before {boundary:%Y-%m-%d}" in again.stdout
