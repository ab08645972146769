"""A new user tries the staff bot's Slack side offline: the sandbox's Slack page, on a freshly seeded demo.

They pick a demo staff member, type `/sb revenue last 30 days` in #switchboard and see the answer and its
chart appear in the channel; someone with no staff account is refused privately; and in a channel that
never invited the bot the answer still arrives, through the command's response URL.
"""

from __future__ import annotations

from typing import Any

from tests.journeys.conftest import Demo, screenshot, sign_in, wait_for

SWITCHBOARD_CHANNEL = "C0SWITCHBOARD"
GENERAL = "C0GENERAL"


def channel(demo: Demo, channel_id: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = demo.sandbox("GET", f"/_sandbox/slack/channels/{channel_id}/messages")[
        "messages"
    ]
    return messages


def type_command(demo: Demo, text: str, user: str, channel_id: str = SWITCHBOARD_CHANNEL) -> dict[str, Any]:
    answer: dict[str, Any] = demo.sandbox(
        "POST", "/_sandbox/slack/command", {"user": user, "channel": channel_id, "text": text}
    )
    return answer


def test_the_admin_asks_for_revenue_in_slack_and_sees_the_answer_with_its_chart(demo: Demo) -> None:
    answer = type_command(demo, "/sb revenue last 30 days", user="U0ADMIN")
    assert answer["status"] == 200 and answer["outcome"] == "acknowledged"

    def with_the_chart() -> list[dict[str, Any]] | None:
        messages = channel(demo, SWITCHBOARD_CHANNEL)
        return messages if any(m.get("files") for m in messages) else None

    shown = wait_for(with_the_chart, 60, "the revenue chart in #switchboard")
    posted = next(m for m in shown if m["via"] == "chat.postMessage")
    assert posted["text"].startswith("Revenue") and "€" in posted["text"]
    assert "visible_to" not in posted  # the whole channel sees the answer
    [chart] = next(m for m in shown if m.get("files"))["files"]
    assert chart["mimetype"] == "image/png" and chart["size"] > 1000


def test_someone_without_a_staff_account_is_refused_privately(demo: Demo) -> None:
    type_command(demo, "/sb revenue last 30 days", user="U0STRANGER")
    shown = wait_for(
        lambda: [m for m in channel(demo, SWITCHBOARD_CHANNEL) if "only answers staff" in m["text"]],
        30,
        "the refusal",
    )
    assert shown[0]["visible_to"] == "U0STRANGER" and "€" not in shown[0]["text"]


def test_in_a_channel_without_the_bot_the_answer_comes_through_the_response_url(demo: Demo) -> None:
    type_command(demo, "/sb revenue last 7 days", user="U0MANAGER1", channel_id=GENERAL)
    shown = wait_for(
        lambda: [m for m in channel(demo, GENERAL) if m["via"] == "response_url" and "Revenue" in m["text"]],
        60,
        "the answer in #general",
    )
    assert "visible_to" not in shown[0]


def test_typed_on_the_page_the_answer_appears_without_reloading(demo: Demo, browser_page: Any) -> None:
    page = browser_page
    sign_in(page, demo, "markus.brandt@northwind.example")  # the dashboard first, as a new user would
    page.goto(f"{demo.sandbox_url}/_sandbox/")
    page.click("text=the Slack workspace")
    page.select_option("select[name=user]", "U0MANAGER1")
    page.fill("#command", "/sb help")
    page.click("button:has-text('Send')")
    page.wait_for_selector("text=Switchboard commands", timeout=30_000)
    assert "Only visible to you" in page.content()
    screenshot(page, "sandbox-slack-help")
