"""Every provider webhook through the real app on SQLite and PostgreSQL: signatures, exactly-once, failures."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlencode

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from api.app import create_app
from api.sandbox.smtp_server import bounce_report
from api.sandbox.state import StoredEmail
from api.unsubscribe import unsubscribe_token
from api.webhooks import replay_failed_webhooks
from bot.telegram_staff.staff_bot import TelegramStaffBot
from providers.telegram.links import telegram_start_payload
from storage.database import Database
from storage.models import (
    ChatMessage,
    ChatSession,
    CommunicationAnalytics,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    CustomerConsent,
    MessageStatusEvent,
    StaffUser,
    WebhookInbox,
)
from switchboard.settings import Settings
from switchboard.wiring import build_container

PUBLIC_URL = "http://testserver.local"  # AsyncTestClient's base URL, so signed URLs match
PHONE = "+15551230001"
WA_ID = "15551230001"
EMAIL = "ada@example.com"
CHAT_ID = 777001


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, public_url=PUBLIC_URL, environment="test")


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
async def customer_id(database: Database) -> int:
    async with database.sessions() as session:
        customer = Customer(name="Ada", phone_e164=PHONE, email=EMAIL, whatsapp_id=WA_ID, external_ref="C-1")
        session.add(customer)
        await session.commit()
        return customer.id


async def add_outbound(
    database: Database,
    customer_id: int,
    channel: str = "sms",
    provider: str = "twilio",
    provider_message_id: str | None = "SM0001",
    status: str = "sent",
) -> int:
    now = datetime.now(UTC)
    async with database.sessions() as session:
        message = CustomerCommunication(
            customer_id=customer_id,
            channel=channel,
            provider=provider,
            direction="outbound",
            source="manual",
            to_address=PHONE,
            body="Your appointment is tomorrow",
            status=status,
            provider_message_id=provider_message_id,
            sent_at=now - timedelta(hours=1) if status != "sending" else None,
            created_at=now - timedelta(hours=1),
        )
        session.add(message)
        await session.commit()
        return message.id


async def count(database: Database, model: Any, *where: Any) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def rows(database: Database, model: Any, *where: Any) -> list[Any]:
    async with database.sessions() as session:
        return list(await session.scalars(select(model).where(*where)))


async def feed_total(database: Database, figure: str) -> int:
    async with database.sessions() as session:
        column = getattr(CommunicationAnalytics, figure)
        return int(await session.scalar(select(func.coalesce(func.sum(column), 0))) or 0)


async def replay(settings: Settings) -> tuple[int, int]:
    """Replays as the CLI would: its own container, on this test's event loop (asyncpg pools are per loop)."""
    container = build_container(settings)
    try:
        return await replay_failed_webhooks(container, 10)
    finally:
        await container.close()


async def inbox_statuses(database: Database) -> list[str]:
    return sorted(row.status for row in await rows(database, WebhookInbox))


# --- signing helpers, with the providers' own algorithms ------------------------------------------------


async def close_nothing() -> None:
    """The stand-in staff bot holds no session."""


def twilio_headers(settings: Settings, path: str, params: dict[str, str]) -> dict[str, str]:
    signature = RequestValidator(settings.twilio_auth_token.get_secret_value()).compute_signature(
        PUBLIC_URL + path, params
    )
    return {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}


async def post_twilio(
    client: AsyncTestClient[Any], settings: Settings, path: str, params: dict[str, str], **overrides: Any
) -> Any:
    headers = twilio_headers(settings, overrides.pop("signed_path", path), overrides.pop("signed", params))
    headers.update(overrides.pop("headers", {}))
    return await client.post(path, content=urlencode(params), headers=headers)


def status_params(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC1", "To": PHONE, **extra}


def inbound_params(body: str, sid: str = "SMin0001", sender: str = PHONE) -> dict[str, str]:
    return {"MessageSid": sid, "From": sender, "To": "+15005550006", "Body": body, "NumMedia": "0"}


def whatsapp_signature(settings: Settings, raw: bytes) -> str:
    key = settings.whatsapp_app_secret.get_secret_value().encode()
    return "sha256=" + hmac.new(key, raw, hashlib.sha256).hexdigest()


def whatsapp_body(
    *, statuses: list[dict[str, Any]] | None = None, messages: list[dict[str, Any]] | None = None
) -> bytes:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881"},
    }
    if statuses:
        value["statuses"] = statuses
    if messages:
        value["messages"] = messages
        value["contacts"] = [{"wa_id": WA_ID, "profile": {"name": "Ada"}}]
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(envelope).encode()


def wa_status(wamid: str, status: str) -> dict[str, Any]:
    return {"id": wamid, "status": status, "timestamp": "1767225600", "recipient_id": WA_ID}


def wa_text(wamid: str, text: str) -> dict[str, Any]:
    return {"from": WA_ID, "id": wamid, "timestamp": "1767225600", "type": "text", "text": {"body": text}}


async def post_whatsapp(
    client: AsyncTestClient[Any], settings: Settings, raw: bytes, signature: str | None = ""
) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature or whatsapp_signature(settings, raw)
    return await client.post("/webhooks/whatsapp", content=raw, headers=headers)


def telegram_update(
    update_id: int,
    text: str,
    user_id: int = CHAT_ID,
    chat_id: int = CHAT_ID,
    language_code: str | None = None,
) -> dict[str, Any]:
    person: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": "Ada"}
    if language_code is not None:
        person["language_code"] = language_code
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1767225600,
            "chat": {"id": chat_id, "type": "private"},
            "from": person,
            "text": text,
        },
    }


async def post_telegram(
    client: AsyncTestClient[Any], settings: Settings, body: Any, secret: str | None = ""
) -> Any:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = (
            secret or settings.telegram_webhook_secret.get_secret_value()
        )
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post("/webhooks/telegram", content=content, headers=headers)


def customer_email(body: str, message_id: str = "<m1@customer.example>") -> bytes:
    email = EmailMessage()
    email["From"] = f"Ada <{EMAIL}>"
    email["To"] = "hello@northwind.example"
    email["Subject"] = "Question"
    email["Message-ID"] = message_id
    email.set_content(body)
    return email.as_bytes()


async def post_email(
    client: AsyncTestClient[Any], settings: Settings, raw: bytes, token: str | None = ""
) -> Any:
    headers = {"Content-Type": "message/rfc822"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token or settings.api_token.get_secret_value()}"
    return await client.post("/webhooks/email/inbound", content=raw, headers=headers)


# --- Twilio status callbacks ---------------------------------------------------------------------------

STATUS = "/webhooks/twilio/status"
INBOUND = "/webhooks/twilio/inbound"


async def test_twilio_delivered_receipt_is_applied(client, settings, database, customer_id) -> None:
    message_id = await add_outbound(database, customer_id)
    response = await post_twilio(client, settings, STATUS, status_params("SM0001", "delivered"))
    assert response.status_code == 200
    [message] = await rows(database, CustomerCommunication, CustomerCommunication.id == message_id)
    assert message.status == "delivered" and message.delivered_at is not None
    assert await feed_total(database, "delivered") == 1
    assert await inbox_statuses(database) == ["applied"]


@pytest.mark.parametrize("problem", ["forged", "missing", "tampered", "wrong_url"])
async def test_twilio_status_without_a_valid_signature_is_refused(
    client, settings, database, customer_id, problem
) -> None:
    await add_outbound(database, customer_id)
    params = status_params("SM0001", "delivered")
    if problem == "forged":
        response = await post_twilio(
            client, settings, STATUS, params, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}
        )
    elif problem == "missing":
        response = await client.post(
            STATUS, content=urlencode(params), headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
    elif problem == "tampered":
        response = await post_twilio(
            client, settings, STATUS, params, signed=status_params("SM0001", "failed")
        )
    else:
        response = await post_twilio(client, settings, STATUS, params, signed_path="/other")
    assert response.status_code == 403
    assert await count(database, WebhookInbox) == 0
    assert await count(database, MessageStatusEvent) == 0
    [message] = await rows(database, CustomerCommunication)
    assert message.status == "sent"


async def test_twilio_receipt_sent_three_times_applies_once(client, settings, database, customer_id) -> None:
    await add_outbound(database, customer_id)
    for _ in range(3):
        response = await post_twilio(client, settings, STATUS, status_params("SM0001", "delivered"))
        assert response.status_code == 200
    assert await count(database, MessageStatusEvent, MessageStatusEvent.status == "delivered") == 1
    assert await feed_total(database, "delivered") == 1
    assert await count(database, WebhookInbox) == 1


async def test_twilio_out_of_order_receipts_never_move_back(client, settings, database, customer_id) -> None:
    message_id = await add_outbound(database, customer_id)
    await post_twilio(client, settings, STATUS, status_params("SM0001", "delivered"))
    await post_twilio(client, settings, STATUS, status_params("SM0001", "sent"))
    [message] = await rows(database, CustomerCommunication, CustomerCommunication.id == message_id)
    assert message.status == "delivered"
    assert await inbox_statuses(database) == ["applied", "applied"]


async def test_twilio_status_finds_our_message_by_the_mid_in_the_callback_url(
    client, settings, database, customer_id
) -> None:
    message_id = await add_outbound(database, customer_id, provider_message_id=None, status="sending")
    path = f"{STATUS}?mid={message_id}"
    response = await post_twilio(client, settings, path, status_params("SMnew", "sent"))
    assert response.status_code == 200
    [message] = await rows(database, CustomerCommunication, CustomerCommunication.id == message_id)
    assert (message.status, message.provider_message_id) == ("sent", "SMnew")


async def test_twilio_signed_garbage_is_kept_as_failed_and_replay_keeps_it_failed(
    client, settings, database
) -> None:
    response = await post_twilio(client, settings, STATUS, {"Nonsense": "1"})
    assert response.status_code == 200
    [row] = await rows(database, WebhookInbox)
    assert row.status == "failed" and "MalformedWebhook" in (row.error or "")
    assert await replay(settings) == (0, 1)
    [row] = await rows(database, WebhookInbox)
    assert row.status == "failed" and row.attempts >= 2


async def test_a_receipt_for_an_unknown_message_fails_then_replays_once_the_message_exists(
    client, settings, database, customer_id
) -> None:
    response = await post_twilio(client, settings, STATUS, status_params("SMlater", "delivered"))
    assert response.status_code == 200
    assert await inbox_statuses(database) == ["failed"]
    await add_outbound(database, customer_id, provider_message_id="SMlater")
    assert await replay(settings) == (1, 0)
    assert await inbox_statuses(database) == ["applied"]
    assert await feed_total(database, "delivered") == 1


# --- Twilio inbound SMS --------------------------------------------------------------------------------


async def test_sms_stop_opts_out_and_answers_with_twiml(client, settings, database, customer_id) -> None:
    await add_outbound(database, customer_id)
    response = await post_twilio(client, settings, INBOUND, inbound_params("Stop"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Message>')
    assert "successfully been unsubscribed" in response.text
    [consent] = await rows(database, CustomerConsent)
    assert (consent.channel, consent.status, consent.source) == ("sms", "opted_out", "sms_keyword")
    [record] = await rows(database, ConsentRecord)
    assert (record.status, record.detail) == ("opted_out", "STOP")
    assert await feed_total(database, "opted_out") == 1
    assert await count(database, CustomerCommunication, CustomerCommunication.direction == "inbound") == 1


async def test_a_german_stopp_opts_out_and_is_answered_in_german(
    client, settings, database, customer_id
) -> None:
    """A German patient's "STOPP" opened a conversation for an agent, and the campaign still reached them."""
    await add_outbound(database, customer_id)
    response = await post_twilio(client, settings, INBOUND, inbound_params("STOPP"))
    assert response.status_code == 200 and "Sie wurden abgemeldet" in response.text
    [consent] = await rows(database, CustomerConsent)
    assert (consent.channel, consent.status, consent.source) == ("sms", "opted_out", "sms_keyword")


async def test_sms_start_resubscribes_with_a_second_ledger_row(
    client, settings, database, customer_id
) -> None:
    await post_twilio(client, settings, INBOUND, inbound_params("STOP", sid="SMa"))
    response = await post_twilio(client, settings, INBOUND, inbound_params("start", sid="SMb"))
    assert "re-subscribed" in response.text
    assert "Msg&amp;Data Rates May Apply." in response.text  # XML-escaped
    [consent] = await rows(database, CustomerConsent)
    assert consent.status == "opted_in"
    ledger = await rows(database, ConsentRecord)
    assert sorted(r.status for r in ledger) == ["opted_in", "opted_out"]


async def test_sms_help_only_replies(client, settings, database, customer_id) -> None:
    response = await post_twilio(client, settings, INBOUND, inbound_params("HELP"))
    assert "<Message>" in response.text and "Reply STOP to unsubscribe" in response.text
    assert await count(database, ConsentRecord) == 0


async def test_an_sms_reply_is_recorded_in_the_chat_and_marks_our_message_replied(
    client, settings, database, customer_id
) -> None:
    message_id = await add_outbound(database, customer_id)
    for _ in range(2):  # the second is Twilio retrying
        response = await post_twilio(client, settings, INBOUND, inbound_params("See you then!"))
        assert response.status_code == 200
        assert response.text == "<Response/>"
    [inbound] = await rows(database, CustomerCommunication, CustomerCommunication.direction == "inbound")
    assert (inbound.customer_id, inbound.status, inbound.body) == (customer_id, "received", "See you then!")
    [chat] = await rows(database, ChatSession)
    assert chat.customer_id == customer_id and chat.channel == "sms" and chat.last_message_at is not None
    [line] = await rows(database, ChatMessage)
    assert line.communication_id == inbound.id and line.author == "customer"
    [ours] = await rows(database, CustomerCommunication, CustomerCommunication.id == message_id)
    assert ours.replied_at is not None
    assert await feed_total(database, "replied") == 1


async def test_sms_from_a_short_code_is_kept_without_a_customer(client, settings, database) -> None:
    # (A first message from an unknown *number* makes a customer: tests/integration/test_newcomers.py.)
    response = await post_twilio(client, settings, INBOUND, inbound_params("hello", sender="72345"))
    assert response.status_code == 200
    [inbound] = await rows(database, CustomerCommunication)
    assert inbound.customer_id is None and inbound.from_address == "72345"
    assert await count(database, ChatSession) == 0


async def test_forged_inbound_sms_changes_nothing(client, settings, database, customer_id) -> None:
    response = await post_twilio(
        client, settings, INBOUND, inbound_params("STOP"), headers={"X-Twilio-Signature": "bm9wZQ=="}
    )
    assert response.status_code == 403
    assert await count(database, CustomerConsent) == 0
    assert await count(database, WebhookInbox) == 0


# --- WhatsApp ------------------------------------------------------------------------------------------


async def test_whatsapp_handshake(client, settings) -> None:
    good = {
        "hub.mode": "subscribe",
        "hub.verify_token": settings.whatsapp_verify_token.get_secret_value(),
        "hub.challenge": "1158201444",
    }
    response = await client.get("/webhooks/whatsapp", params=good)
    assert (response.status_code, response.text) == (200, "1158201444")
    assert response.headers["content-type"].startswith("text/plain")
    bad = await client.get("/webhooks/whatsapp", params={**good, "hub.verify_token": "guess"})
    assert bad.status_code == 403


async def test_whatsapp_receipts_and_messages_are_applied(client, settings, database, customer_id) -> None:
    message_id = await add_outbound(database, customer_id, "whatsapp", "whatsapp_cloud", "wamid.OUT1")
    raw = whatsapp_body(
        statuses=[wa_status("wamid.OUT1", "read")], messages=[wa_text("wamid.IN1", "Thanks!")]
    )
    response = await post_whatsapp(client, settings, raw)
    assert response.status_code == 200
    [ours] = await rows(database, CustomerCommunication, CustomerCommunication.id == message_id)
    assert ours.status == "read" and ours.replied_at is not None
    [inbound] = await rows(database, CustomerCommunication, CustomerCommunication.direction == "inbound")
    assert (inbound.customer_id, inbound.body, inbound.provider_message_id) == (
        customer_id,
        "Thanks!",
        "wamid.IN1",
    )
    assert await inbox_statuses(database) == ["applied"]


@pytest.mark.parametrize("problem", ["forged", "missing", "tampered"])
async def test_whatsapp_without_a_valid_signature_is_refused(
    client, settings, database, customer_id, problem
) -> None:
    await add_outbound(database, customer_id, "whatsapp", "whatsapp_cloud", "wamid.OUT1")
    raw = whatsapp_body(statuses=[wa_status("wamid.OUT1", "delivered")])
    if problem == "forged":
        response = await post_whatsapp(client, settings, raw, "sha256=" + "0" * 64)
    elif problem == "missing":
        response = await post_whatsapp(client, settings, raw, None)
    else:
        response = await post_whatsapp(
            client, settings, raw.replace(b"delivered", b"failed"), whatsapp_signature(settings, raw)
        )
    assert response.status_code in (401, 403)
    assert await count(database, WebhookInbox) == 0
    assert await count(database, MessageStatusEvent) == 0


async def test_whatsapp_identical_body_three_times_applies_once(
    client, settings, database, customer_id
) -> None:
    await add_outbound(database, customer_id, "whatsapp", "whatsapp_cloud", "wamid.OUT1")
    raw = whatsapp_body(statuses=[wa_status("wamid.OUT1", "delivered")])
    for _ in range(3):
        assert (await post_whatsapp(client, settings, raw)).status_code == 200
    assert await count(database, MessageStatusEvent) == 1
    assert await feed_total(database, "delivered") == 1
    assert await count(database, WebhookInbox) == 1


async def test_whatsapp_same_message_in_a_new_envelope_is_recorded_once(
    client, settings, database, customer_id
) -> None:
    first = whatsapp_body(messages=[wa_text("wamid.IN1", "Hi")])
    second = whatsapp_body(messages=[wa_text("wamid.IN1", "Hi")]).replace(b'"id": "1"', b'"id": "2"')
    for raw in (first, second):
        assert (await post_whatsapp(client, settings, raw)).status_code == 200
    assert await count(database, CustomerCommunication, CustomerCommunication.direction == "inbound") == 1
    assert await count(database, ChatMessage) == 1
    assert await inbox_statuses(database) == ["applied", "applied"]


async def test_whatsapp_signed_garbage_is_kept_as_failed(client, settings, database) -> None:
    response = await post_whatsapp(client, settings, b"{not json")
    assert response.status_code == 200
    [row] = await rows(database, WebhookInbox)
    assert row.status == "failed" and row.provider == "whatsapp_cloud"
    assert await replay(settings) == (0, 1)


async def test_whatsapp_stop_opts_out_and_queues_the_confirmation(
    client, settings, database, customer_id
) -> None:
    response = await post_whatsapp(client, settings, whatsapp_body(messages=[wa_text("wamid.IN9", "STOP")]))
    assert response.status_code == 200
    [consent] = await rows(database, CustomerConsent)
    assert (consent.channel, consent.status, consent.source) == ("whatsapp", "opted_out", "whatsapp_keyword")
    [reply] = await rows(database, CustomerCommunication, CustomerCommunication.direction == "outbound")
    assert (reply.status, reply.channel, reply.to_address, reply.category) == (
        "planned",
        "whatsapp",
        WA_ID,
        "transactional",
    )
    assert "unsubscribed" in reply.body and reply.next_attempt_at is not None


# --- Telegram ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["wrong-secret", None])
async def test_telegram_without_the_secret_is_refused(client, settings, database, secret) -> None:
    response = await post_telegram(client, settings, telegram_update(1, "hello"), secret)
    assert response.status_code == 401
    assert await count(database, WebhookInbox) == 0


async def test_telegram_start_with_a_signed_link_ties_the_chat_and_opts_in(
    client, settings, database, customer_id
) -> None:
    payload = telegram_start_payload(settings.session_secret, customer_id)
    response = await post_telegram(client, settings, telegram_update(10, f"/start {payload}"))
    assert response.status_code == 200
    [customer] = await rows(database, Customer)
    assert customer.telegram_chat_id == CHAT_ID
    [consent] = await rows(database, CustomerConsent)
    assert (consent.channel, consent.status, consent.source) == ("telegram", "opted_in", "telegram_command")
    [reply] = await rows(database, CustomerCommunication, CustomerCommunication.direction == "outbound")
    assert reply.to_address == str(CHAT_ID) and reply.status == "planned"
    await post_telegram(client, settings, telegram_update(11, "/stop"))
    [consent] = await rows(database, CustomerConsent)
    assert consent.status == "opted_out"
    assert await count(database, ConsentRecord) == 2


async def test_telegram_start_with_a_forged_link_ties_nothing(
    client, settings, database, customer_id
) -> None:
    response = await post_telegram(
        client, settings, telegram_update(10, f"/start c{customer_id}_AAAAAAAAAAAAAAAAAAAAAA")
    )
    assert response.status_code == 200
    # Nothing of the named customer is touched: the person who pressed Start is a new customer of their own
    # (as anyone pressing Start is: tests/integration/test_newcomers.py), with their own opt-in.
    ada = (await rows(database, Customer, Customer.id == customer_id))[0]
    assert ada.telegram_chat_id is None
    [inbound] = await rows(database, CustomerCommunication, CustomerCommunication.direction == "inbound")
    assert inbound.customer_id != customer_id
    assert await count(database, CustomerConsent, CustomerConsent.customer_id == customer_id) == 0


async def test_telegram_update_delivered_twice_applies_once(client, settings, database, customer_id) -> None:
    for _ in range(2):
        assert (
            await post_telegram(client, settings, telegram_update(20, "where is my order?"))
        ).status_code == 200
    assert await count(database, CustomerCommunication) == 1
    assert await count(database, WebhookInbox) == 1


async def test_telegram_signed_garbage_is_kept_as_failed(client, settings, database) -> None:
    response = await post_telegram(client, settings, b"[1, 2")
    assert response.status_code == 200
    assert await inbox_statuses(database) == ["failed"]


async def test_telegram_staff_messages_go_to_the_staff_bot(client, settings, database) -> None:
    async with database.sessions() as session:
        session.add(
            StaffUser(email="sam@northwind.example", name="Sam", role="manager", telegram_user_id=4242)
        )
        await session.commit()
    handed: list[dict[str, Any]] = []

    async def staff_handler(update: dict[str, Any]) -> None:
        handed.append(update)

    client.app.state.container.telegram_staff = TelegramStaffBot(staff_handler, close_nothing)
    update = telegram_update(30, "/report sales", user_id=4242, chat_id=4242)
    assert (await post_telegram(client, settings, update)).status_code == 200
    assert handed == [update]
    assert await count(database, CustomerCommunication) == 0
    await post_telegram(client, settings, update)  # Telegram retrying: the staff bot sees it once
    assert len(handed) == 1


# --- Email ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["wrong", None])
async def test_email_webhook_needs_the_api_token(client, settings, database, token) -> None:
    response = await post_email(client, settings, customer_email("hi"), token)
    assert response.status_code == 401
    assert await count(database, WebhookInbox) == 0


async def test_inbound_email_is_recorded_once(client, settings, database, customer_id) -> None:
    raw = customer_email("Can I move my appointment?")
    assert (await post_email(client, settings, raw)).status_code == 200
    as_json = await client.post(
        "/webhooks/email/inbound",
        json={"raw": raw.decode()},
        headers={"Authorization": f"Bearer {settings.api_token.get_secret_value()}"},
    )
    assert as_json.status_code == 200
    [inbound] = await rows(database, CustomerCommunication)
    assert (inbound.customer_id, inbound.channel, inbound.body) == (
        customer_id,
        "email",
        "Can I move my appointment?",
    )
    assert await count(database, WebhookInbox) == 1


async def test_an_email_bounce_fails_our_message(client, settings, database, customer_id) -> None:
    message_id = await add_outbound(database, customer_id, "email", "smtp", "<sb.abc@northwind.example>")
    original = StoredEmail(
        message_id="<sb.abc@northwind.example>",
        mail_from="hello@northwind.example",
        rcpt_tos=[EMAIL],
        subject="Reminder",
        text="Hi",
        html=None,
        headers={"Message-ID": "<sb.abc@northwind.example>", "X-Switchboard-Message-Id": str(message_id)},
        raw=b"",
    )
    response = await post_email(client, settings, bounce_report(original, "northwind.example"))
    assert response.status_code == 200
    [ours] = await rows(database, CustomerCommunication, CustomerCommunication.id == message_id)
    assert ours.status == "undelivered" and ours.error_code == "5.1.1"
    assert await feed_total(database, "failed") == 1


async def test_a_scheduled_reports_email_that_bounced_fails_its_delivery_and_its_owner_hears_of_it(
    client, settings, database
) -> None:
    """The relay took the report's email, so the scheduler recorded it delivered; the mailbox's bounce came
    later (the walk saw "delivered" on the report's page for an email that never arrived). Only a bounce
    carrying back our signed check is believed, the owner is emailed once, and a run sent again is another
    email, which a late bounce of the first does not fail."""
    from api.sandbox.config import SandboxConfig
    from api.sandbox.server import run_sandbox
    from reports.deliveries import Actor, retry_delivery
    from reports.destinations import EmailDestination
    from reports.scheduler import ScheduleRunner
    from storage.models import AuditLog, ReportDelivery, ReportSchedule
    from storage.schedules import DueSchedule
    from tests.integration.test_report_schedules import DUE, add_schedule, render

    await add_schedule(database, kind="email", destination="board@northwind.example")
    told: list[tuple[str | None, str]] = []

    async def tell(schedule: DueSchedule, error: str) -> None:
        told.append((schedule.owner_email, error))

    async def bounce(email: StoredEmail, *, forged: bool = False) -> None:
        if forged:  # the same headers without the check, which only the signing secret can make
            headers = {k: v for k, v in email.headers.items() if k.lower() != "x-switchboard-check"}
            email = replace(email, headers=headers)
        response = await post_email(client, settings, bounce_report(email, "northwind.example"))
        assert response.status_code == 200  # taken either way: nothing a replay could find more of

    async def run_now() -> Any:
        [run] = await rows(database, ReportDelivery)
        return run

    now = DUE + timedelta(seconds=5)
    async with run_sandbox(replace(SandboxConfig(), port=0, smtp_port=0, send_status_webhooks=False)) as box:
        email = EmailDestination(
            "127.0.0.1",
            box.smtp_port,
            None,
            None,
            "reports@northwind.example",
            signing_secret=settings.session_secret.get_secret_value(),
        )
        scheduler = ScheduleRunner(
            database=database,
            render=render,
            destinations={"email": email},
            clock=lambda: now,
            notify_owner_of_bounce=tell,
        )
        await scheduler.tick()
        [first] = box.state.emails
        assert (await run_now()).status == "delivered"

        await bounce(first, forged=True)  # anyone can mail the reports' mailbox
        assert (await run_now()).status == "delivered"

        for _ in range(2):  # the relay may report it twice: recorded once
            await bounce(first)
        run = await run_now()
        assert run.status == "failed" and run.error is not None
        assert run.error.startswith("The email did not arrive: the recipient's mail server answered “"), (
            run.error
        )
        assert "5.1.1" in run.error and "{" not in run.error
        audited = [a.action for a in await rows(database, AuditLog)]
        assert audited.count("report.delivery_bounced") == 1
        assert await count(database, CustomerCommunication) == 0  # no customer message was made of it

        for _ in range(2):
            await scheduler.tick()
        assert told == [("maria@northwind.example", run.error)]  # once, whichever tick or process tells

        # Sent again from the report's page: another email, so the first's late bounce leaves it delivered.
        [schedule] = await rows(database, ReportSchedule)
        await retry_delivery(
            database, Actor("maria@northwind.example", "web"), schedule.report_id, run.id, now
        )
        await scheduler.tick()
        first_again, second = box.state.emails
        assert first_again.message_id == first.message_id
        assert second.message_id == first.message_id.replace("@", "-again1@")
        assert (await run_now()).status == "delivered"
        await bounce(first)
        assert (await run_now()).status == "delivered"
        await bounce(second)
        assert (await run_now()).status == "failed"

    # Signed bounces naming no run (an id that does not parse, another destination's key) change nothing.
    from providers.smtp.client import id_check

    secret = settings.session_secret.get_secret_value()
    other_destination = re.sub(r"-[0-9a-f]{8}-again1@", "-00000000-again1@", second.message_id)
    assert other_destination != second.message_id
    for message_id in ("<not-a-report-key@northwind.example>", other_destination):
        headers = {
            **second.headers,
            "Message-ID": message_id,
            "X-Switchboard-Check": id_check(secret, "report", message_id),
        }
        await bounce(replace(second, message_id=message_id, headers=headers))
    assert [a.action for a in await rows(database, AuditLog)].count("report.delivery_bounced") == 2


# --- One-click unsubscribe -----------------------------------------------------------------------------


async def test_one_click_unsubscribe(client, settings, database, customer_id) -> None:
    token = unsubscribe_token(settings.session_secret, customer_id, "email")
    for _ in range(2):  # mailbox providers may POST more than once
        response = await client.post(
            f"/unsubscribe/{token}",
            content="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
        assert response.status_code == 200
    [consent] = await rows(database, CustomerConsent)
    assert (consent.channel, consent.status, consent.source) == ("email", "opted_out", "email_unsubscribe")
    [record] = await rows(database, ConsentRecord)
    assert record.detail == "one-click (the mail program's Unsubscribe button)"


async def test_the_unsubscribe_pages_button_is_recorded_as_the_person_s_click(
    client, settings, database, customer_id
) -> None:
    """The page's form and a mail program's one-click POST are told apart in the consent ledger."""
    token = unsubscribe_token(settings.session_secret, customer_id, "email")
    page = (await client.get(f"/unsubscribe/{token}")).text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]+)">', page))
    assert fields == {"List-Unsubscribe": "One-Click", "by": "page"}
    done = await client.post(
        f"/unsubscribe/{token}", data=fields, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert done.status_code == 200
    [record] = await rows(database, ConsentRecord)
    assert record.detail == "clicked Unsubscribe on the unsubscribe page"


async def test_get_only_shows_the_confirmation(client, settings, database, customer_id) -> None:
    token = unsubscribe_token(settings.session_secret, customer_id, "email")
    response = await client.get(f"/unsubscribe/{token}")
    assert response.status_code == 200
    assert 'method="post"' in response.text and "List-Unsubscribe" in response.text
    assert await count(database, ConsentRecord) == 0


async def test_the_unsubscribe_page_speaks_the_customers_language_and_names_the_channel(
    client, settings, database
) -> None:
    async with database.sessions() as session:
        german = Customer(name="Jonas", phone_e164="+4915112345678", email="jonas@example.de", locale="de_DE")
        session.add(german)
        await session.commit()
    business = settings.business_name
    token = unsubscribe_token(settings.session_secret, german.id, "sms")
    page = await client.get(f"/unsubscribe/{token}", headers={"Accept-Language": "en-GB"})
    assert page.status_code == 200 and '<html lang="de">' in page.text
    assert f"Keine Nachrichten mehr von {business} per SMS erhalten?" in page.text
    assert '<button type="submit">Abmelden</button>' in page.text
    done = await client.post(
        f"/unsubscribe/{token}",
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "Sie sind abgemeldet" in done.text
    assert f"Sie erhalten von {business} per SMS keine Nachrichten mehr." in done.text
    [consent] = await rows(database, CustomerConsent)
    assert (consent.channel, consent.status, consent.source) == ("sms", "opted_out", "sms_unsubscribe")
    again = await client.get(f"/unsubscribe/{token}")  # the link clicked again: nothing left to confirm
    assert again.status_code == 200 and "<form" not in again.text
    assert (
        f"Sie sind bereits abgemeldet: Sie erhalten von {business} per SMS keine Nachrichten." in again.text
    )


async def test_the_unsubscribe_page_of_an_english_customer_names_email(client, settings, customer_id) -> None:
    token = unsubscribe_token(settings.session_secret, customer_id, "email")
    page = await client.get(f"/unsubscribe/{token}", headers={"Accept-Language": "de-DE"})
    assert '<html lang="en">' in page.text
    assert f"Stop receiving messages from {settings.business_name} by email?" in page.text


@pytest.mark.parametrize(
    ("accept_language", "said"),
    [
        ("de-AT,de;q=0.9,en;q=0.8", "Dieser Link zum Abmelden ist nicht gültig."),
        ("fr-FR,de;q=0.5,en;q=0.4", "Dieser Link zum Abmelden ist nicht gültig."),
        ("en;q=0.9,de;q=0.3", "This unsubscribe link is not valid."),
        ("", "This unsubscribe link is not valid."),
    ],
)
async def test_a_link_we_did_not_sign_is_answered_in_the_browsers_language(
    client, settings, customer_id, accept_language: str, said: str
) -> None:
    forged = unsubscribe_token("not-our-secret", customer_id, "email")
    page = await client.get(f"/unsubscribe/{forged}", headers={"Accept-Language": accept_language})
    assert page.status_code == 404 and said in page.text
    assert page.headers["vary"] == "Accept-Language"


async def test_forged_unsubscribe_token_changes_nothing(client, settings, database, customer_id) -> None:
    forged = unsubscribe_token("not-our-secret", customer_id, "email")
    response = await client.post(
        f"/unsubscribe/{forged}",
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 404
    assert (await client.get(f"/unsubscribe/{forged}")).status_code == 404
    assert await count(database, ConsentRecord) == 0
