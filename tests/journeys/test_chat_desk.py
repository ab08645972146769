"""Live chat's desk, as agents use it: a customer's WhatsApp message is assigned to an agent at work, who
finds it in their queue (in chat and in the browser), snoozes and resolves it; the customer writing again
reopens it for the same agent; an agent who is away is given nothing new.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from sqlalchemy import select

from storage.models import ChatSession, Customer, StaffUser
from tests.journeys.conftest import Demo, screenshot, sign_in, wait_for


def whatsapp_chat(demo: Demo, customer_id: int) -> tuple[int, str, int | None] | None:
    found = demo.rows(
        select(ChatSession.id, ChatSession.status, ChatSession.assigned_staff_id)
        .where(ChatSession.customer_id == customer_id, ChatSession.channel == "whatsapp")
        .order_by(ChatSession.id.desc())
        .limit(1),
    )
    return tuple(found[0]) if found else None  # type: ignore[return-value]


def test_a_conversation_is_assigned_worked_resolved_and_reopened(demo: Demo, browser_page: Any) -> None:
    from playwright.sync_api import expect

    (customer_id, name, wa_id), (other_id, _, other_wa) = [
        tuple(r)
        for r in demo.rows(
            select(Customer.id, Customer.name, Customer.whatsapp_id)
            .where(Customer.whatsapp_id.is_not(None))
            .order_by(Customer.id.desc())
            .limit(2),
        )
    ]
    demo.sandbox(
        "POST", "/_sandbox/customer/whatsapp", {"from": wa_id, "body": "Is the clinic open on Saturday?"}
    )
    chat_id, status, agent_id = wait_for(
        lambda: (lambda c: c if c and c[2] is not None else None)(whatsapp_chat(demo, customer_id)),
        30,
        "the conversation to be assigned",
    )
    [(agent_email, agent_name, availability)] = demo.rows(
        select(StaffUser.email, StaffUser.name, StaffUser.availability).where(StaffUser.id == agent_id)
    )
    assert status == "open" and availability == "online"

    listed = demo.ask("chat list", as_email=agent_email)  # "mine" by default
    assert listed.table is not None and str(chat_id) in [row[0] for row in listed.table.rows]

    page = browser_page
    sign_in(page, demo, agent_email)
    page.goto(f"{demo.app_url}/communication/chat?view=mine")
    expect(page.locator("nav.tabs [aria-current=page]")).to_contain_text("Mine")
    page.get_by_role("link", name=name).first.click()
    expect(page.locator(".desk")).to_contain_text(f"Agent: {agent_name}")
    page.get_by_role("button", name="Snooze 2 hours").click()
    expect(page.locator(".notice")).to_contain_text("is snoozed for 2 hours")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator(".notice")).to_contain_text("This conversation is resolved.")
    screenshot(page, "chat-desk-resolved")
    assert whatsapp_chat(demo, customer_id) == (chat_id, "closed", agent_id)

    demo.sandbox("POST", "/_sandbox/customer/whatsapp", {"from": wa_id, "body": "Sorry, one more question"})
    wait_for(
        lambda: whatsapp_chat(demo, customer_id) == (chat_id, "open", agent_id),
        30,
        "the conversation to reopen",
    )
    page.goto(f"{demo.app_url}/communication/chat/{chat_id}")
    expect(page.locator(".conversation")).to_contain_text("Reopened: the customer wrote again.")

    # It waits on us since the customer wrote again: the "Waiting on us" tab, counting from that turn, and the
    # bot say so (the walk saw answered conversations counted as waiting).
    page.goto(f"{demo.app_url}/communication/chat?view=waiting")
    waiting_row = page.locator(f'#queue tr[data-chat-id="{chat_id}"]')
    expect(waiting_row).to_be_visible()
    expect(waiting_row.locator("td").nth(5)).not_to_have_text("answered")
    screenshot(page, "chat-desk-waiting-on-us")
    waiting = demo.ask("how many chats are waiting", as_email=agent_email)
    assert waiting.table is not None and str(chat_id) in [row[0] for row in waiting.table.rows], waiting.text

    assert "You are away" in demo.ask("away", as_email=agent_email).text
    demo.sandbox("POST", "/_sandbox/customer/whatsapp", {"from": other_wa, "body": "Hello"})
    other = wait_for(lambda: whatsapp_chat(demo, other_id), 30, "the other customer's conversation")
    assert other[2] != agent_id  # someone else at work takes it, or it waits unassigned
    assert "Welcome back" in demo.ask("back", as_email=agent_email).text


def test_an_admin_sets_up_live_chat_in_the_browser(demo: Demo, browser_page: Any) -> None:
    """The admin finds the set-up pages from the live-chat page, changes the default SLA policy and makes a
    website chat key that the widget can use at once; a typing slip is refused in words with the form kept."""
    from playwright.sync_api import expect

    from storage.models import ChatWidgetKey, SlaPolicy
    from tests.journeys.conftest import ADMIN

    page = browser_page
    sign_in(page, demo, ADMIN)
    page.goto(f"{demo.app_url}/communication/chat")
    page.get_by_role("link", name="SLA policies").click()
    expect(page.locator("h1")).to_have_text("SLA policies")
    page.get_by_role("link", name="Standard").click()
    page.get_by_label("First response").fill("20")
    page.get_by_label("Friday").fill("08:00-12:30, 13:30-16")  # a slip
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator(".notice.error")).to_contain_text(
        "Friday: “13:30-16” is not a span like 08:00-12:30."
    )
    expect(page.get_by_label("First response")).to_have_value("20")  # nothing typed is lost
    page.get_by_label("Friday").fill("08:00-12:30, 13:30-16:00")
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator(".notice.ok")).to_contain_text("Your changes are saved.")
    screenshot(page, "sla-policies")
    [(first, friday)] = demo.rows(
        select(SlaPolicy.first_response_minutes, SlaPolicy.business_hours).where(SlaPolicy.name == "Standard")
    )
    assert first == 20 and friday["fri"] == [["08:00", "12:30"], ["13:30", "16:00"]]

    page.goto(f"{demo.app_url}/communication/chat")
    page.get_by_role("link", name="Website chat keys").click()
    page.get_by_label("Website (a name for staff)").fill("Booking site")
    page.get_by_label("Allowed addresses, one per line").fill("https://booking.northwind.example")
    page.get_by_role("button", name="Make key").click()
    expect(page.locator(".notice.ok")).to_contain_text("The key is made")
    screenshot(page, "widget-keys")
    [(key,)] = demo.rows(select(ChatWidgetKey.key).where(ChatWidgetKey.name == "Booking site"))
    expect(page.locator("table")).to_contain_text(f'data-key="{key}"')
    # The website's widget opens a chat with it straight away (as the browser on that site would ask).
    opened = urllib.request.Request(
        f"{demo.app_url}/widget/session",
        data=json.dumps({"key": key}).encode(),
        headers={"Origin": "https://booking.northwind.example", "Content-Type": "text/plain;charset=UTF-8"},
        method="POST",
    )
    with urllib.request.urlopen(opened, timeout=10) as answer:
        assert answer.status == 200 and "token" in json.loads(answer.read())
