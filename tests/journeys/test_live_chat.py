"""An agent answers customers from the web inbox, on the channel the customer used; keywords never become agent work.

- A customer writes on WhatsApp (in the sandbox); the agent opens the conversation in the browser, is told the
  reply goes by WhatsApp, sends it, and the customer's phone (the sandbox) shows it.
- A conversation from the website chat is answered in the widget: the page says so before it is sent, and the
  reply is stored on the website chat for the visitor's widget, never sent by email.
- A customer texts STOP: the carrier-style confirmation reaches their phone, they are opted out, and no
  conversation waits for an agent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storage.models import ChatMessage, ChatSession, Customer, CustomerConsent
from tests.journeys.conftest import AGENT, Demo, screenshot, sign_in, wait_for


def open_chats(demo: Demo, customer_id: int, channel: str) -> list[int]:
    return [
        chat_id
        for (chat_id,) in demo.rows(
            select(ChatSession.id).where(
                ChatSession.customer_id == customer_id,
                ChatSession.channel == channel,
                ChatSession.status.in_(["open", "pending"]),
            ),
        )
    ]


def test_an_agent_answers_an_inbound_whatsapp_message_and_the_customer_receives_it(
    demo: Demo, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    customer_id, name, wa_id = demo.rows(
        select(Customer.id, Customer.name, Customer.whatsapp_id)
        .where(Customer.whatsapp_id.is_not(None))
        .order_by(Customer.id)
        .limit(1),
    )[0]
    demo.sandbox("POST", "/_sandbox/customer/whatsapp", {"from": wa_id, "body": "Can I move my appointment?"})
    chat_id = wait_for(
        lambda: (open_chats(demo, customer_id, "whatsapp") or [None])[0], 30, "the chat to open"
    )

    page = browser_page
    sign_in(page, demo, AGENT)
    page.goto(f"{demo.app_url}/communication/chat")
    page.get_by_role("link", name=name).first.click()
    expect(page.locator("h1")).to_have_text(f"Chat with {name}")
    expect(page.locator(".conversation")).to_contain_text("Can I move my appointment?")
    expect(page.locator("#reply-route")).to_contain_text("Your reply goes by WhatsApp")
    page.get_by_label("Reply").fill("Of course — which day suits you?")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".notice")).to_contain_text("Your reply")
    expect(page.locator(".notice")).not_to_contain_text("planned")
    screenshot(page, "live-chat-whatsapp-reply")

    def reached_phone() -> list[dict[str, Any]]:
        return [
            m
            for m in demo.sandbox_messages("whatsapp_cloud")
            if m["direction"] == "outbound" and "which day suits you" in m["body"]
        ]

    [delivered] = wait_for(reached_phone, 30, "the reply at the customer's WhatsApp")
    assert delivered["to"].lstrip("+") == wa_id.lstrip("+")
    turns = demo.rows(select(ChatMessage.author, ChatMessage.body).where(ChatMessage.session_id == chat_id))
    assert ("staff", "Of course — which day suits you?") in [tuple(t) for t in turns]


def test_a_website_chat_is_answered_in_the_widget_never_by_email(demo: Demo, browser_page: Any) -> None:
    from playwright.sync_api import expect

    found = demo.rows(
        select(ChatSession.id, Customer.name)
        .join(Customer, Customer.id == ChatSession.customer_id)
        .where(ChatSession.channel == "chat")
        .order_by(ChatSession.started_at.desc())
        .limit(1),
    )
    assert found, "the demo has no website-chat conversation"
    chat_id, _name = found[0]
    page = browser_page
    sign_in(page, demo, AGENT)
    page.goto(f"{demo.app_url}/communication/chat/{chat_id}")
    expect(page.locator("#reply-route")).to_contain_text("Your reply goes by website chat")
    page.get_by_label("Reply").fill("Thanks for your message — here is the answer.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".notice")).to_contain_text("Your reply")
    sent = demo.rows(
        select(ChatMessage.communication_id).where(
            ChatMessage.session_id == chat_id, ChatMessage.author == "staff"
        ),
    )
    assert sent, "the reply was not recorded in the conversation"
    assert demo.api("GET", f"/api/messages/{sent[-1][0]}")["channel"] == "chat"


def test_stop_is_confirmed_to_the_customer_and_opens_no_agent_work(demo: Demo) -> None:
    customer_id, phone = demo.rows(
        select(Customer.id, Customer.phone_e164)
        .where(Customer.phone_e164.is_not(None))
        .order_by(Customer.id.desc())
        .limit(1),
    )[0]
    before = open_chats(demo, customer_id, "sms")
    demo.sandbox("POST", "/_sandbox/customer/sms", {"from": phone, "body": "STOP"})

    def confirmed() -> list[dict[str, Any]]:
        return [
            m
            for m in demo.sandbox_messages("twilio")
            if m["direction"] == "outbound"
            and m["to"] == phone
            and ("unsubscribed" in m["body"] or "abgemeldet" in m["body"])
        ]

    [confirmation] = wait_for(confirmed, 30, "the STOP confirmation on the customer's phone")
    assert confirmation["body"].startswith("Northwind Clinics:")
    # In the language their number's country reads (a German-speaking one: German), as our own SMS told them.
    german = phone.startswith(("+49", "+43", "+41"))
    assert ("abgemeldet" in confirmation["body"]) is german, (phone, confirmation["body"])

    def opted_out() -> bool:
        return bool(
            demo.rows(
                select(CustomerConsent.status).where(
                    CustomerConsent.customer_id == customer_id,
                    CustomerConsent.channel == "sms",
                    CustomerConsent.status == "opted_out",
                ),
            )
        )

    wait_for(opted_out, 30, "the opt-out")
    assert open_chats(demo, customer_id, "sms") == before, "STOP opened agent work"
