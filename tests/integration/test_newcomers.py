"""A first message from someone no customer record knows makes a customer and opens their conversation,
on every channel, once however the provider retries or two messages race; off by setting, nothing is made."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from storage.database import Database
from storage.models import (
    ChatMessage,
    ChatSession,
    Customer,
    CustomerCommunication,
    CustomerConsent,
    CustomerTag,
    StaffUser,
)
from switchboard.settings import Settings
from tests.integration.test_webhooks import (
    INBOUND,
    PUBLIC_URL,
    count,
    inbound_params,
    post_email,
    post_telegram,
    post_twilio,
    post_whatsapp,
    rows,
    telegram_update,
)

NEW_WA = "4915112345678"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, public_url=PUBLIC_URL, environment="test")


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


def whatsapp_from(wa_id: str, wamid: str, text: str, profile: str | None) -> bytes:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881"},
        "messages": [
            {"from": wa_id, "id": wamid, "timestamp": "1767225600", "type": "text", "text": {"body": text}}
        ],
    }
    if profile is not None:
        value["contacts"] = [{"wa_id": wa_id, "profile": {"name": profile}}]
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(envelope).encode()


async def tags(database: Database, customer_id: int) -> list[str]:
    return [t.tag for t in await rows(database, CustomerTag, CustomerTag.customer_id == customer_id)]


async def test_a_new_patient_on_whatsapp_becomes_a_customer_with_an_open_conversation(
    client, settings, database
) -> None:
    first = whatsapp_from(NEW_WA, "wamid.N1", "Do you take new patients?", "Ana Lima")
    for _ in range(2):  # Meta retries: applied once
        assert (await post_whatsapp(client, settings, first)).status_code == 200
    second = whatsapp_from(NEW_WA, "wamid.N2", "For my son, 8", "Ana Lima")
    assert (await post_whatsapp(client, settings, second)).status_code == 200
    [customer] = await rows(database, Customer)
    assert (customer.name, customer.whatsapp_id, customer.phone_e164) == ("Ana Lima", NEW_WA, f"+{NEW_WA}")
    # A German number: Germany, Berlin's time (quiet hours are hers) and German templates.
    assert (customer.country, customer.timezone, customer.locale) == ("DE", "Europe/Berlin", "de")
    assert await tags(database, customer.id) == ["first-contact:whatsapp"]
    assert await count(database, CustomerConsent) == 0  # nothing assumed
    [chat] = await rows(database, ChatSession)
    assert (chat.customer_id, chat.channel, chat.status) == (customer.id, "whatsapp", "open")
    turns = await rows(database, ChatMessage, ChatMessage.session_id == chat.id)
    assert sorted(t.body for t in turns if t.author == "customer") == [
        "Do you take new patients?",
        "For my son, 8",
    ]
    inbound = await rows(database, CustomerCommunication)
    assert len(inbound) == 2 and {m.customer_id for m in inbound} == {customer.id}


async def test_a_stranger_on_sms_telegram_and_email_each_becomes_a_customer(
    client, settings, database
) -> None:
    assert (
        await post_twilio(
            client, settings, INBOUND, inbound_params("hi", sid="SMnew1", sender="+15550009999")
        )
    ).status_code == 200
    assert (
        await post_telegram(client, settings, telegram_update(41, "hello", user_id=888002, chat_id=888002))
    ).status_code == 200
    email = EmailMessage()
    email["From"] = "Bea Novak <Bea@Example.org>"
    email["To"] = "hello@northwind.example"
    email["Subject"] = "Appointment"
    email["Message-ID"] = "<n1@example.org>"
    email.set_content("Can I book a check-up?")
    assert (await post_email(client, settings, email.as_bytes())).status_code in (200, 202)
    made = {c.name: c for c in await rows(database, Customer)}
    assert set(made) == {"SMS contact …9999", "Ada", "Bea Novak"}
    assert made["SMS contact …9999"].phone_e164 == "+15550009999"
    # Where they are and what they read, as far as the address tells: a US number's country and language (the
    # US spans several zones: the business's), and the business's zone and customers' language otherwise.
    placed = {name: (c.country, c.timezone, c.locale) for name, c in made.items()}
    assert placed == {
        "SMS contact …9999": ("US", settings.business_timezone, "en"),
        "Ada": (None, settings.business_timezone, settings.customer_language),
        "Bea Novak": (None, settings.business_timezone, settings.customer_language),
    }
    assert made["Ada"].telegram_chat_id == 888002  # Telegram's first name
    assert made["Bea Novak"].email == "bea@example.org"
    for customer in made.values():
        assert len(await tags(database, customer.id)) == 1
    chats = await rows(database, ChatSession)
    assert sorted(c.channel for c in chats) == ["email", "sms", "telegram"]


def mail(sender: str, message_id: str, **headers: str) -> bytes:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = "hello@northwind.example"
    email["Message-ID"] = message_id
    for name, value in headers.items():
        email[name.replace("_", "-")] = value
    email.set_content("Thanks for your message")
    return email.as_bytes()


async def test_a_stranger_s_stop_a_machine_s_mail_or_a_staff_member_makes_no_customer(
    client, settings, database
) -> None:
    async with database.sessions() as session:
        session.add(
            StaffUser(email="lena@northwind.example", name="Lena", role="agent", telegram_user_id=5151)
        )
        await session.commit()
    await post_twilio(client, settings, INBOUND, inbound_params("STOP", sid="SMstop", sender="+15550009999"))
    machines = [
        mail("Mail Delivery System <MAILER-DAEMON@mx.example.org>", "<b1@mx.example.org>"),
        mail("Billing <no_reply@shop.example>", "<b2@shop.example>"),
        mail("Bounces <bounces+123@lists.example>", "<b3@lists.example>"),
        mail("Bea <bea@example.org>", "<b4@example.org>", Auto_Submitted="auto-replied"),
        mail("News <news@example.org>", "<b5@example.org>", List_Id="<news.example.org>"),
        mail("Lena <Lena@Northwind.example>", "<b6@northwind.example>"),  # staff are not customers
    ]
    for raw in machines:
        assert (await post_email(client, settings, raw)).status_code in (200, 202)
    # A staff member who writes to the customer bot before being linked (or after leaving) is no customer.
    await post_telegram(client, settings, telegram_update(77, "hello?", user_id=5151, chat_id=5151))
    assert await count(database, Customer) == 0 and await count(database, ChatSession) == 0
    assert await count(database, CustomerCommunication) == 1 + len(machines)  # all kept, unowned


async def test_telegram_s_start_button_from_a_stranger_welcomes_them_and_records_the_opt_in(
    client, settings, database
) -> None:
    assert (
        await post_telegram(
            client,
            settings,
            telegram_update(90, "/start", user_id=888003, chat_id=888003, language_code="en"),
        )
    ).status_code == 200
    [customer] = await rows(database, Customer)
    assert (customer.telegram_chat_id, customer.name) == (888003, "Ada")
    [consent] = await rows(database, CustomerConsent)
    assert (consent.channel, consent.status) == ("telegram", "opted_in")
    [welcome] = await rows(database, CustomerCommunication, CustomerCommunication.direction == "outbound")
    assert welcome.body.startswith(f"{settings.business_name}: Welcome! Write here any time")
    assert "re-subscribed" not in welcome.body
    assert await count(database, ChatSession) == 0  # a keyword is no agent's work
    # What they write next opens their conversation.
    await post_telegram(
        client,
        settings,
        telegram_update(91, "Do you have appointments today?", user_id=888003, chat_id=888003),
    )
    [chat] = await rows(database, ChatSession)
    assert chat.customer_id == customer.id and await count(database, Customer) == 1
    # A Telegram set to German (or saying nothing: the business's customers read German here) is welcomed so.
    await post_telegram(client, settings, telegram_update(95, "/start", user_id=888004, chat_id=888004))
    german = await rows(database, CustomerCommunication, CustomerCommunication.to_address == "888004")
    assert [m.body.split(": ", 1)[1].split("!")[0] for m in german] == ["Willkommen"]


async def test_two_first_messages_at_once_make_one_customer(client, settings, database) -> None:
    bodies = [whatsapp_from(NEW_WA, f"wamid.R{i}", f"message {i}", None) for i in range(4)]
    responses = await asyncio.gather(*(post_whatsapp(client, settings, body) for body in bodies))
    assert [r.status_code for r in responses] == [200] * 4
    [customer] = await rows(database, Customer)
    assert customer.name == "WhatsApp contact …5678"
    assert await count(database, ChatSession) == 1
    assert await count(database, CustomerCommunication, CustomerCommunication.customer_id == customer.id) == 4


async def test_turned_off_a_stranger_s_message_is_kept_unowned(database, database_url) -> None:
    settings = Settings(
        database_url=database_url, public_url=PUBLIC_URL, environment="test", chat_welcome_newcomers=False
    )
    async with AsyncTestClient(create_app(settings)) as client:
        await post_whatsapp(client, settings, whatsapp_from(NEW_WA, "wamid.O1", "hello", "Ana"))
    assert await count(database, Customer) == 0 and await count(database, ChatSession) == 0
    [inbound] = await rows(database, CustomerCommunication)
    assert inbound.customer_id is None


async def test_a_known_customer_s_out_of_office_reply_opens_no_agent_work(client, settings, database) -> None:
    async with database.sessions() as session:
        customer = Customer(name="Bea Novak", email="bea@example.org")
        session.add(customer)
        await session.commit()
        customer_id = customer.id
    away = mail("Bea <bea@example.org>", "<ooo1@example.org>", Auto_Submitted="auto-replied")
    assert (await post_email(client, settings, away)).status_code in (200, 202)
    assert await count(database, ChatSession) == 0
    [kept] = await rows(database, CustomerCommunication)
    assert kept.customer_id == customer_id  # kept, on the customer's record
    # In a conversation already open it shows, with a note, and still gives no one new work.
    real = mail("Bea <bea@example.org>", "<q1@example.org>")
    await post_email(client, settings, real)
    [chat] = await rows(database, ChatSession)
    again = mail("Bea <bea@example.org>", "<ooo2@example.org>", Auto_Submitted="auto-replied")
    await post_email(client, settings, again)
    notes = [m.body for m in await rows(database, ChatMessage, ChatMessage.session_id == chat.id)]
    assert any("automatic reply" in body for body in notes), notes
