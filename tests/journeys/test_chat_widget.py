"""A customer chats from the clinic's website: on a freshly seeded demo, the widget on the demo page opens a
conversation on the website chat, an agent answers it from the web inbox, and the answer appears in the widget
without a reload, confirmed as delivered; nothing goes by email."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storage.models import ChatMessage, ChatSession, CustomerCommunication
from tests.journeys.conftest import AGENT, Demo, screenshot, sign_in, wait_for

QUESTION = "Hi, can I book a skin check for next Tuesday?"
ANSWER = "Of course — Tuesday at 10:30 is free; shall I book it?"


def test_a_customer_writes_in_the_website_widget_and_sees_the_agents_answer_live(
    demo: Demo, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    customer = browser_page
    customer.goto(f"{demo.app_url}/widget/demo")
    customer.get_by_role("button", name="Chat with us").click()
    panel = customer.get_by_role("dialog", name="Chat")
    panel.get_by_label("Your message").first.fill(QUESTION)
    panel.get_by_role("button", name="Send", exact=True).click()
    expect(panel.locator(".sbw-mine")).to_have_text([QUESTION])

    def conversation() -> list[Any]:
        return demo.rows(
            select(ChatSession.id, ChatSession.assigned_staff_id)
            .join(ChatMessage, ChatMessage.session_id == ChatSession.id)
            .where(ChatSession.channel == "chat", ChatMessage.body == QUESTION)
        )

    [(chat_id, assignee)] = wait_for(conversation, 30, "the website-chat conversation")
    assert assignee is not None, "the demo's agents are online, so the conversation is assigned"

    agent = customer.context.browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        sign_in(agent, demo, AGENT)
        agent.goto(f"{demo.app_url}/communication/chat/{chat_id}")
        expect(agent.locator(".conversation")).to_contain_text(QUESTION)
        expect(agent.locator("#reply-route")).to_contain_text("Your reply goes by website chat")
        agent.get_by_label("Reply").fill(ANSWER)
        agent.get_by_role("button", name="Send reply").click()
        expect(agent.locator(".notice.ok")).to_contain_text("Your reply")
    finally:
        agent.close()

    expect(panel.locator(".sbw-theirs")).to_have_text([ANSWER], timeout=30_000)
    screenshot(customer, "chat-widget-answer")

    def confirmed() -> list[Any]:
        return demo.rows(
            select(CustomerCommunication.channel, CustomerCommunication.status).where(
                CustomerCommunication.body == ANSWER,
                CustomerCommunication.status.in_(["delivered", "read"]),
            )
        )

    [(channel, _status)] = wait_for(confirmed, 30, "the widget to confirm the answer")
    assert channel == "chat"
    everywhere = demo.rows(select(CustomerCommunication.channel).where(CustomerCommunication.body == ANSWER))
    assert [tuple(row) for row in everywhere] == [("chat",)], "the answer went out on another channel too"
