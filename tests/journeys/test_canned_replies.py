"""An agent starts a conversation from chat (`chat open`), answers it in the browser with a canned reply whose
variables are filled for the customer (the one only the agent knows is asked for and a send without it is
refused), leaves an internal note, and sees what became of the reply; the same reply is filled from chat."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from storage.models import AuditLog, ChatMessage, Customer, CustomerCommunication, CustomerConsent
from tests.journeys.conftest import AGENT, Demo, screenshot, sign_in


def test_an_agent_opens_answers_with_a_canned_reply_and_notes(demo: Demo, browser_page: Any) -> None:
    from playwright.sync_api import expect

    opted_out = select(CustomerConsent.customer_id).where(
        CustomerConsent.channel == "email", CustomerConsent.status == "opted_out"
    )
    [(customer_id, name)] = demo.rows(
        select(Customer.id, Customer.name)
        .where(Customer.email.is_not(None), Customer.id.not_in(opted_out))
        .order_by(Customer.id)
        .limit(1)
    )
    first_name = name.split()[0]

    opened = demo.ask(f"chat open #{customer_id} on email", as_email=AGENT)
    assert opened.title == "Conversation open", opened.text
    fields = {f.label: f.value for f in opened.fields}
    chat_id = int(fields["Conversation"])
    assert fields["Agent"] == "Lena Hoffmann" and fields["Dashboard"].endswith(
        f"/communication/chat/{chat_id}"
    )
    again = demo.ask(f"chat open #{customer_id} on email", as_email=AGENT)
    assert f"already has conversation {chat_id}" in again.text

    filled = demo.ask(f"canned thanks for {chat_id}", as_email=AGENT)
    assert filled.text.startswith(f"Thank you, {first_name}!") and "Lena, Northwind" in filled.text

    page = browser_page
    sign_in(page, demo, AGENT)
    page.goto(f"{demo.app_url}/communication/chat/{chat_id}")
    expect(page.locator("ol.conversation")).to_contain_text("Opened by Lena Hoffmann on email")
    box = page.get_by_label("Reply or note")
    box.fill("/reschedule")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator("#canned-inserted")).to_contain_text("Still to fill: {new_time}.")
    expect(box).to_have_value(
        f"Hi {first_name}, no problem: I can move your appointment to {{new_time}}. "
        "Shall I book that for you?"
    )

    page.get_by_role("button", name="Send reply").click()  # the variable is still there
    expect(page.get_by_role("alert")).to_contain_text("Fill in {new_time} before sending")

    box.fill(box.input_value().replace("{new_time}", "Friday at 10:30"))
    page.get_by_role("button", name="Send reply").click()
    reply = page.locator("ol.conversation li.from-us").filter(has_text="Friday at 10:30")
    expect(reply.locator(".delivery")).to_contain_text(re.compile("queued|sending|sent|delivered|read"))

    box = page.get_by_label("Reply or note")
    box.fill("She prefers mornings; offer 9:00 first next time.")
    page.get_by_role("button", name="Add note (only staff see it)").click()
    note = page.locator("ol.conversation li.note")
    expect(note).to_contain_text("Internal note")
    expect(note).to_contain_text("She prefers mornings")
    screenshot(page, "canned-reply-and-note")

    sent = demo.rows(
        select(CustomerCommunication.body).where(
            CustomerCommunication.customer_id == customer_id, CustomerCommunication.channel == "email"
        )
    )
    bodies = [body for (body,) in sent]
    assert any("Friday at 10:30" in body for body in bodies)
    assert not any("{new_time}" in body or "prefers mornings" in body for body in bodies)
    assert demo.rows(
        select(ChatMessage.is_note).where(
            ChatMessage.session_id == chat_id, ChatMessage.body.like("She prefers%")
        )
    ) == [(True,)]
    actions = [a for (a,) in demo.rows(select(AuditLog.action).where(AuditLog.target == f"chat:{chat_id}"))]
    assert actions.count("chat.open") == 2 and "chat.note" in actions
