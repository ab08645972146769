"""Agents answer customers from Slack threads and Telegram, offline, on a freshly seeded demo (the loop `make demo`
shows).

- A customer writes on WhatsApp in the sandbox; the conversation appears in the sandbox Slack's #live-chat
  with its first message in the thread.
- Lena replies in the thread; Slack retries the event twice; the customer's phone shows the reply once, and
  the thread says it was delivered.
- `note:` stays between colleagues; someone without a staff account is told privately that nothing was sent;
  a forged event is refused.
- A PDF Lena shares in the thread reaches the customer's WhatsApp as a document, and the conversation keeps it.
- The Resolve button on the conversation's first message resolves it, and the message says so.
- A new patient (a number no customer has) writes on WhatsApp: they become a customer, their conversation
  appears in #live-chat, and Lena's thread reply reaches their phone.
- In Telegram, the admin is given an SMS conversation, the staff bot forwards it to her private chat, and her
  reply to that message reaches the customer's phone as an SMS; so does a PDF she sends as a reply, by its
  signed link.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select

from storage.models import (
    ChatAttachment,
    ChatMessage,
    ChatSession,
    ChatTelegramPost,
    Customer,
    CustomerCommunication,
    JobHeartbeat,
    MessageStatusEvent,
)
from switchboard.erasure_copies import ERASED_COPY
from tests.journeys.conftest import Demo, no_tracebacks, screenshot, sign_in, start_demo, stop_demo, wait_for

LIVE_CHAT = "C0LIVECHAT"
LENA = "U0AGENT01"
#: A one-page PDF, as the attachment rules recognise one by its first bytes.
PRICE_LIST = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("demo-slack-threads")
    running = start_demo(
        folder,
        f"sqlite+aiosqlite:///{folder / 'switchboard.db'}",
        SWITCHBOARD_SLACK_CHAT_CHANNEL=LIVE_CHAT,
        SWITCHBOARD_TELEGRAM_STAFF_CHATS="1",
    )
    try:
        yield running
        no_tracebacks(running)
    finally:
        stop_demo(running)


def live_chat(demo: Demo) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = demo.sandbox("GET", f"/_sandbox/slack/channels/{LIVE_CHAT}/messages")[
        "messages"
    ]
    return found


def thread(demo: Demo, root_ts: str) -> list[dict[str, Any]]:
    return [m for m in live_chat(demo) if m.get("thread_ts") == root_ts]


def echo_trail(demo: Demo, chat_id: int, provider: str = "whatsapp") -> str:
    """Where a staff reply's delivery echo stands: the message's status, its status history, what the
    thread last echoed, the sandbox's last webhooks of `provider` with their outcome, and the server's last
    warnings."""
    reply = demo.rows(
        select(ChatMessage.communication_id, ChatMessage.echoed_status, CustomerCommunication.status)
        .join(CustomerCommunication, CustomerCommunication.id == ChatMessage.communication_id)
        .where(ChatMessage.session_id == chat_id, ChatMessage.author == "staff")
    )
    history = demo.rows(
        select(MessageStatusEvent.status, MessageStatusEvent.source, MessageStatusEvent.occurred_at).where(
            MessageStatusEvent.communication_id.in_([row[0] for row in reply])
        )
    )
    hooks = [h for h in demo.sandbox("GET", "/_sandbox/webhooks") if provider in str(h.get("provider"))]
    warnings = [line for line in demo.server_log().splitlines() if "WARNING" in line or "ERROR" in line]
    events = [
        (event["kind"], event["ts"], [(a["status"], a["outcome"]) for a in event["attempts"]])
        for event in demo.sandbox("GET", "/_sandbox/slack/events")["events"][-3:]
    ]
    private = [m["text"] for m in live_chat(demo) if m.get("visible_to")][-3:]
    # A background job stuck in a pass shows as an old last success (the heartbeat is written every few seconds).
    jobs = demo.rows(select(JobHeartbeat.job, JobHeartbeat.last_success_at, JobHeartbeat.last_error))
    return (
        f"reply (message, echoed, status): {reply}; history: {history}; sandbox webhooks: {hooks[-6:]}; "
        f"Slack events: {events}; private answers: {private}; server warnings: {warnings[-10:]}; "
        f"jobs (last success, last error) at {datetime.now(UTC):%H:%M:%S}: {jobs}"
    )


def sms_conversation(demo: Demo, customer_id: int) -> int:
    """The customer's SMS conversation, once their text has opened it."""
    found: int = wait_for(
        lambda: (
            demo.rows(
                select(ChatSession.id).where(
                    ChatSession.customer_id == customer_id, ChatSession.channel == "sms"
                )
            )
            or [[None]]
        )[0][0],
        30,
        "the SMS conversation",
    )
    return found


def phone(demo: Demo, wa_id: str) -> list[str]:
    return [
        m["body"]
        for m in demo.sandbox_messages("whatsapp_cloud")
        if m.get("to") == wa_id and m["direction"] == "outbound"
    ]


def test_an_agent_answers_a_whatsapp_customer_from_the_slack_thread(demo: Demo) -> None:
    customer_id, name, wa_id = demo.rows(
        select(Customer.id, Customer.name, Customer.whatsapp_id)
        .where(Customer.whatsapp_id.is_not(None))
        .order_by(Customer.id)
        .limit(1)
    )[0]
    demo.sandbox(
        "POST", "/_sandbox/customer/whatsapp", {"from": wa_id, "body": "Can I come at 4 instead of 3?"}
    )

    def the_root() -> dict[str, Any] | None:
        return next(
            (m for m in live_chat(demo) if "on WhatsApp" in m["text"] and not m.get("thread_ts")), None
        )

    root = wait_for(the_root, 30, "the conversation in #live-chat")
    chat_id = demo.rows(
        select(ChatSession.id).where(
            ChatSession.customer_id == customer_id, ChatSession.channel == "whatsapp"
        )
    )[0][0]
    assert f"Conversation {chat_id}" in root["text"]
    shown = wait_for(lambda: thread(demo, root["ts"]) or None, 30, "the customer's turn in the thread")
    assert shown[0]["text"] == f"*{name}*: Can I come at 4 instead of 3?"

    # Lena answers in the thread; Slack delivers the event three times (two retries).
    before = len(phone(demo, wa_id))
    sent = demo.sandbox(
        "POST",
        "/_sandbox/slack/thread-reply",
        {
            "user": LENA,
            "channel": LIVE_CHAT,
            "thread_ts": root["ts"],
            "text": "Yes, 4 pm works.",
            "retries": 2,
        },
    )
    assert sent["status"] == 200, sent
    wait_for(lambda: len(phone(demo, wa_id)) > before or None, 30, "the reply on the customer's phone")
    time.sleep(1.5)  # room for a wrongly doubled send to show up
    assert phone(demo, wa_id)[before:] == ["Yes, 4 pm works."]
    [turn] = demo.rows(
        select(ChatMessage.body, ChatMessage.staff_id).where(
            ChatMessage.session_id == chat_id, ChatMessage.author == "staff"
        )
    )
    assert turn[0] == "Yes, 4 pm works." and turn[1] is not None
    try:
        wait_for(
            # The sandbox's phone may read it before the worker's next look: then "read" is what is said.
            # The sandbox started by `serve` fails 3 % of sends, as carriers do: then the echo says so.
            lambda: (
                any(
                    "by WhatsApp" in m["text"] or "Read by the customer" in m["text"]
                    for m in thread(demo, root["ts"])
                    if m.get("bot_id") and not m.get("visible_to")
                )
                or None
            ),
            60,  # the receipt, then the echo: two hops through a loaded CI machine (once over 30 s)
            "the delivery echo in the thread",
        )
    except AssertionError as timed_out:
        # Timed out once in CI (2026-12-03) and never locally: say where the echo stopped.
        raise AssertionError(f"{timed_out}; {echo_trail(demo, chat_id)}") from None

    # A note stays inside; a stranger is refused privately; a forged event never lands.
    demo.sandbox(
        "POST",
        "/_sandbox/slack/thread-reply",
        {
            "user": LENA,
            "channel": LIVE_CHAT,
            "thread_ts": root["ts"],
            "text": "note: she is a regular, be kind",
        },
    )
    demo.sandbox(
        "POST",
        "/_sandbox/slack/thread-reply",
        {"user": "U0STRANGER", "channel": LIVE_CHAT, "thread_ts": root["ts"], "text": "I can do 5"},
    )
    refusal = wait_for(
        lambda: next((m for m in thread(demo, root["ts"]) if m.get("visible_to") == "U0STRANGER"), None),
        30,
        "the stranger's refusal",
    )
    assert "nothing was sent" in refusal["text"]
    assert wait_for(
        lambda: (
            demo.rows(select(ChatMessage.body).where(ChatMessage.session_id == chat_id, ChatMessage.is_note))
            or None
        ),
        30,
        "the note",
    ) == [("she is a regular, be kind",)]
    forged_body = json.dumps({"type": "event_callback", "event": {"type": "message", "text": "free money"}})
    stamp = str(int(time.time()))
    forged = SignatureVerifier("not-the-secret").generate_signature(timestamp=stamp, body=forged_body)
    status, _ = http_json_signed(demo, forged_body, stamp, forged)
    assert status == 401
    time.sleep(1.0)
    assert phone(demo, wa_id)[before:] == ["Yes, 4 pm works."]

    # Lena shares the price list (a PDF) in the thread: the customer gets the file itself on WhatsApp, by a
    # signed link to Switchboard that serves the very bytes she shared, and the conversation keeps it.
    demo.sandbox(
        "POST",
        "/_sandbox/slack/thread-reply",
        {
            "user": LENA,
            "channel": LIVE_CHAT,
            "thread_ts": root["ts"],
            "text": "Our prices",
            "file": {"name": "prices.pdf", "content_base64": base64.b64encode(PRICE_LIST).decode()},
        },
    )
    document = wait_for(
        lambda: next(
            (b for b in phone(demo, wa_id)[before:] if b.startswith("[document: prices.pdf]")), None
        ),
        30,
        "the PDF on the customer's phone",
    )
    assert "Our prices" in document, document
    link = re.search(r"https?://\S+/media/\S+", document)
    assert link is not None, document
    with urllib.request.urlopen(link[0], timeout=10) as served:
        assert served.read() == PRICE_LIST
    assert demo.rows(
        select(ChatAttachment.filename)
        .join(ChatMessage, ChatMessage.id == ChatAttachment.message_id)
        .where(ChatMessage.session_id == chat_id, ChatMessage.author == "staff")
    ) == [("prices.pdf",)]

    # The button an agent gets when a reply misses WhatsApp's window previews the approved follow-up template.
    preview = demo.ask(
        f"send whatsapp to #{customer_id} template chat_follow_up", as_email="lena.hoffmann@northwind.example"
    )
    # In the customer's language, addressed to them, waiting for the agent's confirmation.
    assert preview.confirm and name.split()[0] in preview.text
    assert (
        "we have answered your message" in preview.text
        or "wir haben auf Ihre Nachricht geantwortet" in preview.text
    )

    # Resolve from the button on the conversation's first message.
    resolve = next(e for e in root["blocks"][1]["elements"] if e["value"] == f"chat resolve {chat_id}")
    public_before = [m["ts"] for m in live_chat(demo) if not m.get("visible_to")]
    demo.sandbox(
        "POST",
        "/_sandbox/slack/click",
        {"user": LENA, "channel": LIVE_CHAT, "ts": root["ts"], "action_id": resolve["action_id"]},
    )
    wait_for(
        lambda: (
            demo.rows(select(ChatSession.status).where(ChatSession.id == chat_id))[0][0] == "closed" or None
        ),
        30,
        "the conversation to be resolved",
    )
    wait_for(
        lambda: "(resolved)" in (the_root() or {}).get("text", "") or None, 30, "the root to say resolved"
    )
    # Everyone sees it said once, in the thread; the command's own answer goes to Lena alone.
    wait_for(
        lambda: any(m.get("visible_to") == LENA and "esolved" in m["text"] for m in live_chat(demo)) or None,
        30,
        "the answer to the presser",
    )
    said = [m for m in live_chat(demo) if not m.get("visible_to") and m["ts"] not in public_before]
    assert all(m.get("thread_ts") == root["ts"] for m in said), "nothing new outside the thread"
    assert [m["text"] for m in said if "esolved" in m["text"]] == ["_Resolved._"], [m["text"] for m in said]


def test_a_new_patient_s_first_whatsapp_reaches_an_agent_and_her_answer_reaches_them(
    demo: Demo, browser_page: Any
) -> None:
    new_number = "4915199887766"  # no customer in the demo has it
    assert not demo.rows(select(Customer.id).where(Customer.whatsapp_id == new_number))
    demo.sandbox(
        "POST",
        "/_sandbox/customer/whatsapp",
        {"from": new_number, "name": "Mira Okafor", "body": "Hi, do you take new patients?"},
    )
    [(customer_id, name)] = wait_for(
        lambda: demo.rows(select(Customer.id, Customer.name).where(Customer.whatsapp_id == new_number)),
        30,
        "the new patient's customer record",
    )
    assert name == "Mira Okafor"  # WhatsApp's profile name
    [(chat_id,)] = wait_for(
        lambda: demo.rows(select(ChatSession.id).where(ChatSession.customer_id == customer_id)),
        30,
        "the new patient's conversation",
    )
    root = wait_for(
        lambda: next(
            (m for m in live_chat(demo) if f"Conversation {chat_id}" in m["text"] and not m.get("thread_ts")),
            None,
        ),
        30,
        "the new patient's conversation in #live-chat",
    )
    shown = wait_for(lambda: thread(demo, root["ts"]) or None, 30, "her first message in the thread")
    assert shown[0]["text"] == "*Mira Okafor*: Hi, do you take new patients?"
    assert new_number not in root["text"]  # contact details masked in Slack by default
    demo.sandbox(
        "POST",
        "/_sandbox/slack/thread-reply",
        {"user": LENA, "channel": LIVE_CHAT, "thread_ts": root["ts"], "text": "Yes! When suits you?"},
    )
    wait_for(lambda: phone(demo, new_number) or None, 30, "the answer on the new patient's phone")
    assert phone(demo, new_number) == ["Yes! When suits you?"]
    # The conversation's customer card says the record is new and what it holds, so staff complete it.
    sign_in(browser_page, demo, "lena.hoffmann@northwind.example")
    browser_page.goto(f"{demo.app_url}/communication/chat/{chat_id}")
    card = browser_page.locator(".customer-card").inner_text()
    screenshot(browser_page, "chat-new-patient")
    assert "Mira Okafor" in card and "New contact" in card and "first message on WhatsApp" in card
    assert "Tags: first-contact:whatsapp" in card


def test_the_admin_answers_an_sms_customer_by_replying_in_telegram(demo: Demo) -> None:
    admin_telegram = 1001  # the demo seed's admin, Amelia Novak
    customer_id, phone_number = demo.rows(
        select(Customer.id, Customer.phone_e164)
        .where(Customer.phone_e164.is_not(None), Customer.whatsapp_id.is_(None))
        .order_by(Customer.id)
        .limit(1)
    )[0]
    demo.sandbox("POST", "/_sandbox/customer/sms", {"from": phone_number, "body": "Do you open on Sunday?"})
    chat_id = sms_conversation(demo, customer_id)
    demo.ask(f"chat assign {chat_id} to admin@northwind.example")

    def forwarded() -> str | None:
        for message in reversed(demo.sandbox_messages("telegram")):
            if message["to"] == str(admin_telegram) and f"Conversation {chat_id}" in message["body"]:
                return str(message["provider_message_id"]).split(":")[1]
        return None

    message_id = wait_for(forwarded, 30, "the conversation in the admin's Telegram chat")

    def texts() -> list[str]:
        return [
            m["body"]
            for m in demo.sandbox_messages("twilio")
            if m["direction"] == "outbound" and m["to"] == phone_number
        ]

    before = len(texts())
    demo.sandbox(
        "POST",
        "/_sandbox/customer/telegram",
        {"chat_id": str(admin_telegram), "text": "No, Monday to Saturday.", "message_id": str(message_id)},
    )
    wait_for(lambda: len(texts()) > before or None, 30, "the SMS reply on the customer's phone")
    assert texts()[before:] == ["No, Monday to Saturday."]

    # What happened to it comes back in her Telegram chat, as the carrier reports it (the sandbox, as carriers
    # do, fails a few sends).
    def told() -> dict[str, Any] | None:
        for message in reversed(demo.sandbox_messages("telegram")):
            body = str(message["body"])
            if message["to"] == str(admin_telegram) and body.startswith(("✅ Delivered", "⚠️ Not delivered")):
                return message
        return None

    outcome = wait_for(told, 60, "what happened to the reply, in the admin's Telegram chat")
    said = outcome["body"]
    assert said == "✅ Delivered by SMS." or said.startswith("⚠️ Not delivered by SMS: "), said
    # As Telegram's reply to what she wrote.
    assert outcome["details"]["reply_to_message"]["text"] == "No, Monday to Saturday.", outcome

    # She replies with the opening-hours PDF as a Telegram document: the customer's SMS carries its signed link,
    # which serves the very bytes, and the conversation keeps the file.
    before = len(texts())
    demo.sandbox(
        "POST",
        "/_sandbox/customer/telegram",
        {
            "chat_id": str(admin_telegram),
            "text": "Our opening hours",
            "message_id": str(message_id),
            "file_base64": base64.b64encode(PRICE_LIST).decode(),
            "file_name": "hours.pdf",
            "file_type": "application/pdf",
        },
    )
    wait_for(lambda: len(texts()) > before or None, 30, "the file's SMS on the customer's phone")
    [sms] = texts()[before:]
    assert sms.startswith("Our opening hours") and "hours.pdf" in sms, sms
    link = re.search(r"https?://\S+/media/\S+", sms)
    assert link is not None, sms
    with urllib.request.urlopen(link[0], timeout=10) as served:
        assert served.read() == PRICE_LIST
    assert demo.rows(
        select(ChatAttachment.filename)
        .join(ChatMessage, ChatMessage.id == ChatAttachment.message_id)
        .where(ChatMessage.session_id == chat_id, ChatMessage.author == "staff")
    ) == [("hours.pdf",)]


def http_json_signed(demo: Demo, body: str, stamp: str, signature: str) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{demo.app_url}/slack/events",
        data=body.encode(),
        headers={
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_erasing_a_patient_overwrites_their_conversation_in_slack_and_telegram(demo: Demo) -> None:
    """The clinic erases a patient who wrote by SMS: the bot's copies of the conversation in the Slack thread
    and in the admin's Telegram chat read "(erased at the customer's request)"; what the agent typed in
    Slack stays, and the command says so."""
    customer_id, name, phone_number = demo.rows(
        select(Customer.id, Customer.name, Customer.phone_e164)
        .where(Customer.phone_e164.is_not(None), Customer.whatsapp_id.is_(None))
        .order_by(Customer.id.desc())
        .limit(1)
    )[0]
    words = "I have a rash on my left arm, can Dr Weber see me?"
    demo.sandbox("POST", "/_sandbox/customer/sms", {"from": phone_number, "body": words})
    chat_id = sms_conversation(demo, customer_id)
    root = wait_for(
        lambda: next((m for m in live_chat(demo) if f"Conversation {chat_id} " in m["text"]), None),
        30,
        "the conversation in #live-chat",
    )
    wait_for(
        lambda: any(words in m["text"] for m in thread(demo, root["ts"])) or None, 30, "the patient's turn"
    )
    demo.ask(f"chat assign {chat_id} to admin@northwind.example")

    def posts() -> list[tuple[int, int]]:
        return [
            (int(chat), int(message))
            for chat, message in demo.rows(
                select(ChatTelegramPost.telegram_chat_id, ChatTelegramPost.message_id).where(
                    ChatTelegramPost.session_id == chat_id
                )
            )
        ]

    wait_for(posts, 30, "the conversation in the admin's Telegram chat")
    sent = demo.sandbox(
        "POST",
        "/_sandbox/slack/thread-reply",
        {"user": LENA, "channel": LIVE_CHAT, "thread_ts": root["ts"], "text": "Yes, tomorrow at 10."},
    )
    assert sent["status"] == 200, sent
    # The delivery echo is the bot's last post in the thread: wait for it, so none comes after the erasure.
    try:
        wait_for(
            # "Delivered by SMS", or "Not delivered by SMS: …" for the 3 % of sends the sandbox fails.
            lambda: (
                any(
                    m.get("bot_id") and not m.get("visible_to") and "by SMS" in m["text"]
                    for m in thread(demo, root["ts"])
                )
                or None
            ),
            60,
            "the delivery echo",
        )
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}; {echo_trail(demo, chat_id, 'twilio')}") from None

    erased = demo.cli("customer", "erase", str(customer_id), "--yes")
    assert erased.returncode == 0, erased.stderr
    out = erased.stdout
    assert "Traceback" not in out + erased.stderr
    shown = [root, *thread(demo, root["ts"])]
    ours = [m for m in live_chat(demo) if m.get("bot_id") and m["ts"] in {s["ts"] for s in shown}]
    theirs = [m for m in thread(demo, root["ts"]) if not m.get("bot_id")]
    assert len(ours) >= 4  # the root, the patient's turn, "Assigned to Amelia Novak.", the echo
    assert {m["text"] for m in ours} == {ERASED_COPY}
    assert [m["text"] for m in theirs] == ["Yes, tomorrow at 10."]
    telegram = {m["provider_message_id"]: m["body"] for m in demo.sandbox_messages("telegram")}
    assert {telegram[f"{chat}:{message}"] for chat, message in posts()} == {ERASED_COPY}
    assert (
        f"staff chats: {len(ours)} Slack messages and {len(posts())} Telegram "
        f'{"post" if len(posts()) == 1 else "posts"} now read "{ERASED_COPY}"' in out
    )
    assert "1 message that staff typed in their Slack threads remains: a bot cannot change it" in out
    assert "not changed" not in out
    everything = json.dumps([ours, [telegram[f"{chat}:{message}"] for chat, message in posts()]])
    assert words not in everything and phone_number not in everything and name not in everything

    # Erasing again finds nothing left to change.
    again = demo.cli("customer", "erase", str(customer_id), "--yes")
    assert again.returncode == 0 and "staff chats:" not in again.stdout, again.stdout
