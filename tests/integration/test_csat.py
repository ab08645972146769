"""CSAT on SQLite and PostgreSQL through the real paths: a customer writes on WhatsApp (signed webhook), an agent
resolves, the worker sends the survey to the WhatsApp sandbox (text in the window, the approved template after it),
the customer answers "5" by webhook, the score is stored without reopening, and the csat KPI counts it; the email
survey's one-click links over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import insert, select

from api.app import create_app
from api.sandbox import RunningSandbox, SandboxConfig, run_sandbox
from domain.clock import utc_now
from domain.conversations.csat import SURVEY_TEXT, csat_token
from domain.conversations.model import CustomerMessage
from domain.conversations.use_cases import DeskActor, InboundPolicy, handle_customer_message, resolve_chat
from domain.delivery.dispatch import Dispatcher
from domain.delivery.outbox import RetryPolicy
from domain.delivery.pacing import TokenBucket
from domain.delivery.ports import InboundMessage
from domain.vocabulary import Channel
from providers.whatsapp.driver import WhatsAppCloudDriver
from reports.answer import answer
from reports.periods import PeriodSpec
from reports.query import MetricQuery
from reports.rollups import RollupRefresh
from storage.database import Database
from storage.desk import SqlDeskUnitOfWork
from storage.models import (
    AuditLog,
    ChatMessage,
    ChatSession,
    ChatWidgetKey,
    ChatWidgetVisitor,
    Customer,
    CustomerCommunication,
    MessageTemplate,
    StaffUser,
)
from storage.queries.chats import chat_conversation
from storage.seeding.catalogue import template_rows
from storage.unit_of_work import SqlUnitOfWork
from storage.units import UnitsOfWork
from switchboard.settings import Settings
from switchboard.wiring import Container
from tests.integration.test_webhooks import PUBLIC_URL, post_whatsapp, whatsapp_body

WA_ID = "15551230001"
EMAIL = "ada@example.com"
AGENT = DeskActor(1, "lena@x.example", "web")
FAST = RetryPolicy(
    max_attempts=3,
    base_delay=timedelta(milliseconds=20),
    max_delay=timedelta(milliseconds=100),
    lease=timedelta(seconds=10),
    in_doubt_grace=timedelta(milliseconds=300),
)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, public_url=PUBLIC_URL, environment="test", worker_in_process=False
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    config = dataclasses.replace(SandboxConfig(), port=0, smtp_port=0, send_status_webhooks=False)
    async with run_sandbox(config) as running:
        yield running


@pytest.fixture
async def people(database: Database) -> int:
    """An agent at work, the customer Ada, and the WhatsApp survey template as `switchboard seed` stores it."""
    rows, _ = template_rows(datetime(2024, 1, 1, tzinfo=UTC))
    survey_templates = [
        {k: v for k, v in r.items() if k != "id"} for r in rows if r["name"] == "chat_csat_survey"
    ]
    async with database.sessions() as session:
        session.add(StaffUser(id=1, email=AGENT.email, name="Lena", role="agent", availability="online"))
        customer = Customer(name="Ada Lovelace", whatsapp_id=WA_ID, email=EMAIL, locale="en")
        session.add(customer)
        await session.execute(insert(MessageTemplate), survey_templates)
        await session.commit()
        return customer.id


def desk(client: AsyncTestClient[Any], database: Database) -> SqlDeskUnitOfWork:
    """The desk's unit of work as the app's container makes it (its CSAT policy), on this test's event loop
    (asyncpg pools belong to one loop, and the test client runs the app on its own)."""
    container: Container = client.app.state.container
    return UnitsOfWork(database, "UTC", csat_policy=container.csat_policy()).desk()


def wa_text(wamid: str, text: str, at: datetime) -> dict[str, Any]:
    return {
        "from": WA_ID,
        "id": wamid,
        "timestamp": str(int(at.timestamp())),
        "type": "text",
        "text": {"body": text},
    }


async def customer_writes(
    client: AsyncTestClient[Any],
    settings: Settings,
    sandbox: RunningSandbox,
    wamid: str,
    text: str,
    at: datetime,
) -> None:
    if at > utc_now() - timedelta(hours=23):
        sandbox.state.note_whatsapp_inbound(WA_ID, at.timestamp())  # the sandbox keeps Meta's window too
    response = await post_whatsapp(client, settings, whatsapp_body(messages=[wa_text(wamid, text, at)]))
    assert response.status_code == 200, response.text


async def deliver(database: Database, sandbox: RunningSandbox) -> None:
    """The delivery worker, against the WhatsApp sandbox, until nothing is waiting to be sent."""
    config = sandbox.state.config
    driver = WhatsAppCloudDriver(
        config.whatsapp_token, config.whatsapp_phone_number_id, base_url=sandbox.base_url, timeout_seconds=2.0
    )
    worker = Dispatcher(
        open_uow=lambda: SqlUnitOfWork(database),
        drivers={Channel.WHATSAPP: driver},
        pacing={Channel.WHATSAPP: TokenBucket(100.0)},
        worker_id="csat-test",
        policy=FAST,
        concurrency=2,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, idle_sleep=0.05))
    try:
        for _ in range(200):
            async with database.read_sessions() as session:
                waiting = await session.scalar(
                    select(CustomerCommunication.id).where(
                        CustomerCommunication.status.in_(["planned", "sending"])
                    )
                )
            if waiting is None:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the survey was not sent within 10 s")
    finally:
        stop.set()
        await task
        await driver.close()


async def the_chat(database: Database) -> ChatSession:
    async with database.read_sessions() as session:
        chats = list(await session.scalars(select(ChatSession)))
    assert len(chats) == 1, "the answer must not open a second conversation"
    return chats[0]


async def csat_kpi(database: Database, today: date) -> float | None:
    reply = await answer(
        database, MetricQuery(("csat",), PeriodSpec.between(today, today)), now=utc_now(), business_tz="UTC"
    )
    return reply.result.series[0].total


async def test_a_whatsapp_survey_in_the_window_is_answered_by_webhook_and_counted(
    client: AsyncTestClient[Any], settings: Settings, database: Database, sandbox: RunningSandbox, people: int
) -> None:
    now = utc_now()
    await customer_writes(client, settings, sandbox, "wamid.in1", "Can I move my appointment?", now)
    chat = await the_chat(database)
    assert chat.assigned_staff_id == 1

    await resolve_chat(desk(client, database), chat.id, AGENT, now=utc_now())
    await deliver(database, sandbox)
    [sent] = [
        m for m in sandbox.state.messages_json("whatsapp_cloud")["messages"] if m["direction"] == "outbound"
    ]
    # Inside the window: an interactive list message Meta's limits accept, its words the survey's text.
    assert sent["body"] == f"{SURVEY_TEXT} [list: Rate us]" and sent["template"] is None
    assert sent["details"]["type"] == "interactive"
    rows = sent["details"]["choices"]
    assert [(r["title"], r["description"]) for r in rows] == [
        ("5", "Great"),
        ("4", "Good"),
        ("3", "Okay"),
        ("2", "Not good"),
        ("1", "Poor"),
    ]
    chat = await the_chat(database)
    assert chat.status == "closed" and chat.resolved_by_staff_id == 1 and chat.csat_requested_at is not None

    # The customer taps "5 Great": Meta's webhook carries the row as an interactive list_reply.
    tapped = {
        "from": WA_ID,
        "id": "wamid.in2",
        "timestamp": str(int(utc_now().timestamp())),
        "type": "interactive",
        "interactive": {"type": "list_reply", "list_reply": rows[0]},
        "context": {"from": "15550783881", "id": sent["provider_message_id"]},
    }
    sandbox.state.note_whatsapp_inbound(WA_ID)
    assert (await post_whatsapp(client, settings, whatsapp_body(messages=[tapped]))).status_code == 200
    chat = await the_chat(database)
    assert (chat.csat_score, chat.status, chat.resolved_by_staff_id) == (5, "closed", 1)
    assert chat.csat_answered_at is not None and chat.assigned_staff_id == 1
    assert chat.last_message_at == chat.csat_answered_at, "the answer is the customer's last message"
    # The comment is kept, and its message still reaches an agent: the conversation reopens, assigned.
    await customer_writes(client, settings, sandbox, "wamid.in3", "Quick and kind, thank you", utc_now())
    chat = await the_chat(database)
    assert (chat.csat_comment, chat.csat_score, chat.status) == ("Quick and kind, thank you", 5, "open")
    assert chat.assigned_staff_id == 1 and chat.reopened_at is not None
    async with database.read_sessions() as session:
        turns = list(
            await session.execute(
                select(ChatMessage.author, ChatMessage.body)
                .where(ChatMessage.session_id == chat.id)
                .order_by(ChatMessage.id)
            )
        )
        audited = list(
            await session.scalars(select(AuditLog.action).where(AuditLog.target == f"chat:{chat.id}"))
        )
    assert [tuple(t) for t in turns][-7:] == [
        ("system", "Resolved."),
        ("bot", SURVEY_TEXT),
        ("customer", "5"),
        ("system", "The customer rated this conversation 5 of 5."),
        ("system", "The customer added a comment to their rating."),
        ("system", "Reopened: the customer wrote again."),
        ("customer", "Quick and kind, thank you"),
    ]
    assert audited.count("chat.csat") == 2
    shown = await chat_conversation(database, chat.id, None)  # the read model the conversation page uses
    assert shown is not None and (shown.chat.csat_score, shown.chat.csat_comment) == (
        5,
        "Quick and kind, thank you",
    )

    # The KPI, recounted from the raw rows: answered surveys of conversations started today.
    async with database.read_sessions() as session:
        answered = list(
            await session.scalars(
                select(ChatSession.csat_score).where(ChatSession.csat_answered_at.is_not(None))
            )
        )
    assert answered == [5]
    assert await csat_kpi(database, chat.started_at.astimezone(UTC).date()) == pytest.approx(
        sum(s for s in answered if s is not None) / len(answered)
    )


async def test_outside_the_window_the_survey_is_the_approved_template(
    client: AsyncTestClient[Any], settings: Settings, database: Database, sandbox: RunningSandbox, people: int
) -> None:
    long_ago = utc_now() - timedelta(days=2)
    await customer_writes(client, settings, sandbox, "wamid.old", "Thanks, all sorted", long_ago)
    chat = await the_chat(database)
    await resolve_chat(desk(client, database), chat.id, AGENT, now=utc_now())
    await deliver(database, sandbox)
    [sent] = [
        m for m in sandbox.state.messages_json("whatsapp_cloud")["messages"] if m["direction"] == "outbound"
    ]
    assert sent["template"] == "nw_chat_csat_survey"
    assert (
        sent["body"] == "Hi Ada, thank you for talking with us. How did we do? Reply 1 (poor) to 5 (great)."
    )
    async with database.read_sessions() as session:
        row = await session.scalar(
            select(CustomerCommunication).where(CustomerCommunication.direction == "outbound")
        )
    assert (
        row is not None and row.status in ("queued", "sent", "delivered") and row.category == "transactional"
    )


async def test_surveys_off_sends_nothing(database_url: str, database: Database, people: int) -> None:
    settings = Settings(
        database_url=database_url,
        public_url=PUBLIC_URL,
        environment="test",
        worker_in_process=False,
        csat_surveys=False,
    )
    async with AsyncTestClient(create_app(settings)) as client:
        async with database.sessions() as session:
            chat = ChatSession(customer_id=people, channel="whatsapp", status="open", started_at=utc_now())
            session.add(chat)
            await session.commit()
        await resolve_chat(desk(client, database), chat.id, AGENT, now=utc_now())
    assert (await the_chat(database)).status == "closed"
    async with database.read_sessions() as session:
        assert await session.scalar(select(CustomerCommunication.id)) is None


async def email_survey_sent(
    client: AsyncTestClient[Any], database: Database, customer_id: int, said: str
) -> tuple[ChatSession, CustomerCommunication]:
    """An email conversation the customer opened with `said`, resolved: its survey email, as queued."""
    async with database.sessions() as session:
        chat = ChatSession(customer_id=customer_id, channel="email", status="open", started_at=utc_now())
        session.add(chat)
        await session.flush()
        session.add(ChatMessage(session_id=chat.id, author="customer", body=said, created_at=utc_now()))
        await session.commit()
    await resolve_chat(desk(client, database), chat.id, AGENT, now=utc_now())
    async with database.read_sessions() as session:
        survey = await session.scalar(select(CustomerCommunication))
    assert survey is not None
    return chat, survey


async def test_the_email_survey_links_record_the_score_over_http(
    client: AsyncTestClient[Any], settings: Settings, database: Database, people: int
) -> None:
    chat, survey = await email_survey_sent(client, database, people, "Hello")
    assert survey.channel == "email" and survey.subject == "How did we do?"
    links = re.findall(r"http://testserver\.local(/csat/\S+/[1-5])", survey.body)
    assert len(links) == 5 and links[0].endswith("/1") and links[4].endswith("/5")

    page = await client.get(links[3])
    assert (
        page.status_code == 200 and "You rated your conversation with Northwind Clinics 4 of 5" in page.text
    )
    assert '<textarea id="comment" name="comment"' in page.text
    assert (await the_chat(database)).csat_score == 4
    first_answer = (await the_chat(database)).csat_answered_at

    again = await client.get(links[3])  # a second click on the same score changes nothing
    assert again.status_code == 200 and (await the_chat(database)).csat_answered_at == first_answer
    changed = await client.get(links[1])  # another score replaces it: the latest click counts
    assert changed.status_code == 200 and "2 of 5" in changed.text
    assert (await the_chat(database)).csat_score == 2

    token = csat_token(settings.session_secret.get_secret_value(), chat.id)
    comment = await client.post(
        f"/csat/{token}",
        content="comment=Took+a+while%2C+but+solved.",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert comment.status_code == 200 and "Your comment is saved" in comment.text
    chat_row = await the_chat(database)
    assert (chat_row.csat_score, chat_row.csat_comment, chat_row.status) == (
        2,
        "Took a while, but solved.",
        "closed",
    )

    assert (await client.get(f"/csat/{token}x/5")).status_code == 404  # not a token we signed
    assert (await client.get(f"/csat/{token}/9")).status_code == 404
    other = csat_token(settings.session_secret.get_secret_value(), chat.id + 1000)
    assert (await client.get(f"/csat/{other}/5")).status_code == 404  # no such survey
    assert (await the_chat(database)).csat_score == 2


async def test_a_german_customers_link_page_speaks_german_as_the_survey_did(
    client: AsyncTestClient[Any], settings: Settings, database: Database, people: int
) -> None:
    async with database.sessions() as session:
        ada = await session.get(Customer, people)
        assert ada is not None
        ada.locale = "de_DE"
        await session.commit()
    chat, survey = await email_survey_sent(client, database, people, "Hallo")
    assert survey.subject == "Wie war es?" and "5 (sehr gut)" in survey.body
    links = re.findall(r"http://testserver\.local(/csat/\S+/[1-5])", survey.body)

    page = await client.get(links[4])
    assert page.status_code == 200 and '<html lang="de">' in page.text
    assert "Sie haben Ihr Gespräch mit Northwind Clinics mit 5 von 5 (sehr gut) bewertet." in page.text
    assert "Möchten Sie noch etwas hinzufügen?" in page.text and "Kommentar senden" in page.text
    assert "You rated" not in page.text
    token = csat_token(settings.session_secret.get_secret_value(), chat.id)
    comment = await client.post(
        f"/csat/{token}",
        content="comment=Sehr+freundlich",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert comment.status_code == 200 and "Ihr Kommentar ist gespeichert." in comment.text
    assert (await the_chat(database)).csat_comment == "Sehr freundlich"

    async with database.sessions() as session:
        row = await session.get(ChatSession, chat.id)
        assert row is not None
        row.csat_requested_at = utc_now() - timedelta(days=8)
        await session.commit()
    closed = await client.get(links[2])
    assert closed.status_code == 410 and '<html lang="de">' in closed.text
    assert (
        "Diese Umfrage ist geschlossen. Ihre Antwort, 5 von 5 (sehr gut), haben wir behalten." in closed.text
    )
    assert (await the_chat(database)).csat_score == 5

    # A link we did not sign names no customer: the browser's first language answers it.
    bogus = await client.get(f"/csat/{token}x/5", headers={"Accept-Language": "de-AT,de;q=0.9,en;q=0.5"})
    assert bogus.status_code == 404 and "Dieser Link zur Umfrage ist nicht gültig." in bogus.text
    english = await client.get(f"/csat/{token}x/5", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert english.status_code == 404 and "This survey link is not valid." in english.text
    assert english.headers["vary"] == "Accept-Language"
    # A language the survey does not speak is passed over, and q values rank the rest.
    for header in ("fr-FR, de;q=0.9", "en;q=0.1, de;q=0.9"):
        german = await client.get(f"/csat/{token}x/5", headers={"Accept-Language": header})
        assert "Dieser Link zur Umfrage ist nicht gültig." in german.text, header


async def test_an_email_link_after_a_week_finds_the_survey_closed(
    client: AsyncTestClient[Any], settings: Settings, database: Database, people: int
) -> None:
    async with database.sessions() as session:
        chat = ChatSession(
            customer_id=people,
            channel="email",
            status="closed",
            started_at=utc_now() - timedelta(days=9),
            csat_requested_at=utc_now() - timedelta(days=8),
        )
        session.add(chat)
        await session.commit()
    token = csat_token(settings.session_secret.get_secret_value(), chat.id)
    closed = await client.get(f"/csat/{token}/5")
    assert closed.status_code == 410 and "This survey has closed" in closed.text
    assert (await the_chat(database)).csat_score is None


async def test_an_answer_to_an_older_conversation_reaches_the_rolled_up_kpi(
    database: Database, people: int
) -> None:
    """The KPI is read from rollups kept by the worker; an answer changes the bucket of the day the
    conversation started, long before the worker's last pass, so that bucket is counted again."""
    started = utc_now() - timedelta(days=3)
    async with database.sessions() as session:
        session.add(
            ChatSession(
                customer_id=people,
                channel="whatsapp",
                status="closed",
                started_at=started,
                closed_at=started + timedelta(hours=1),
                resolved_by_staff_id=1,
                csat_requested_at=utc_now() - timedelta(hours=2),
            )
        )
        await session.commit()
    refresh = RollupRefresh(database, "UTC")
    await refresh.run(utc_now())  # the worker's first pass builds the rollups
    day = started.astimezone(UTC).date()
    assert await csat_kpi(database, day) is None

    now = utc_now()
    message = InboundMessage("whatsapp_cloud", Channel.WHATSAPP, "wamid.late", WA_ID, "us", "4", now)
    async with UnitsOfWork(database, "UTC").conversations() as uow:
        await handle_customer_message(uow, CustomerMessage(message), InboundPolicy("Northwind"), now)
        await uow.commit()
    await refresh.run(utc_now())
    assert (await the_chat(database)).csat_score == 4
    assert await csat_kpi(database, day) == 4


async def test_a_website_chat_gets_the_text_survey_on_the_chat_channel(
    client: AsyncTestClient[Any], database: Database, people: int
) -> None:
    """The widget's channel carries the survey as text (its worker hands it to the widget), never email."""
    async with database.sessions() as session:
        key = ChatWidgetKey(key="site", name="Clinic website", allowed_origins=["https://clinic.example"])
        session.add(key)
        await session.flush()
        session.add(ChatWidgetVisitor(token_hash="h" * 64, key_id=key.id, customer_id=people))
        chat = ChatSession(customer_id=people, channel="chat", status="open", started_at=utc_now())
        session.add(chat)
        await session.flush()
        session.add(ChatMessage(session_id=chat.id, author="customer", body="Hello", created_at=utc_now()))
        await session.commit()
    await resolve_chat(desk(client, database), chat.id, AGENT, now=utc_now())
    async with database.read_sessions() as session:
        [survey] = list(await session.scalars(select(CustomerCommunication)))
    assert (survey.channel, survey.body, survey.status) == ("chat", SURVEY_TEXT, "planned")
    assert survey.category == "conversational"
    assert (await the_chat(database)).csat_requested_at is not None


async def answered_and_resolved(
    client: AsyncTestClient[Any], settings: Settings, database: Database, sandbox: RunningSandbox
) -> ChatSession:
    await customer_writes(client, settings, sandbox, "wamid.q1", "Can I move my appointment?", utc_now())
    chat = await the_chat(database)
    await resolve_chat(desk(client, database), chat.id, AGENT, now=utc_now())
    chat = await the_chat(database)
    assert chat.status == "closed" and chat.csat_requested_at is not None
    return chat


async def turns_of(database: Database, chat_id: int) -> list[tuple[str, str]]:
    async with database.read_sessions() as session:
        rows = await session.execute(
            select(ChatMessage.author, ChatMessage.body)
            .where(ChatMessage.session_id == chat_id)
            .order_by(ChatMessage.id)
        )
        return [(author, body) for author, body in rows]


async def test_a_question_after_the_score_is_kept_as_the_comment_and_reaches_an_agent(
    client: AsyncTestClient[Any], settings: Settings, database: Database, sandbox: RunningSandbox, people: int
) -> None:
    chat = await answered_and_resolved(client, settings, database, sandbox)
    await customer_writes(client, settings, sandbox, "wamid.q2", "5", utc_now())
    assert (await the_chat(database)).status == "closed"
    question = "Can I also move my appointment to Friday?"
    await customer_writes(client, settings, sandbox, "wamid.q3", question, utc_now())
    chat = await the_chat(database)
    assert (chat.csat_score, chat.csat_comment) == (5, question)
    assert (chat.status, chat.assigned_staff_id) == ("open", 1)  # work again, with the agent
    turns = await turns_of(database, chat.id)
    assert turns.count(("customer", question)) == 1  # the customer's turn once, not twice
    assert turns[-3:] == [
        ("system", "The customer added a comment to their rating."),
        ("system", "Reopened: the customer wrote again."),
        ("customer", question),
    ]


async def test_a_number_answering_the_agent_after_the_survey_is_not_a_score(
    client: AsyncTestClient[Any], settings: Settings, database: Database, sandbox: RunningSandbox, people: int
) -> None:
    from storage.csat import SqlSurveyAnswers

    chat = await answered_and_resolved(client, settings, database, sandbox)
    asked = utc_now()
    async with database.sessions() as session:
        # A note after the survey reaches nobody: the survey still takes a score.
        session.add(
            ChatMessage(
                session_id=chat.id,
                author="staff",
                staff_id=1,
                body="call back?",
                is_note=True,
                created_at=asked,
            )
        )
        await session.flush()
        survey = await SqlSurveyAnswers(session).open_survey(
            people, Channel.WHATSAPP, asked - timedelta(days=1)
        )
        assert survey is not None and not survey.staff_wrote_since
        session.add(
            ChatMessage(
                session_id=chat.id,
                author="staff",
                staff_id=1,
                body="1) Monday or 2) Tuesday?",
                created_at=asked,
            )
        )
        await session.commit()
    await customer_writes(client, settings, sandbox, "wamid.b2", "2", utc_now())
    chat = await the_chat(database)
    assert (chat.csat_score, chat.csat_answered_at) == (None, None)
    assert (chat.status, chat.assigned_staff_id) == ("open", 1)
    assert (await turns_of(database, chat.id))[-1] == ("customer", "2")


async def test_a_conversation_staff_opened_that_the_customer_never_answered_gets_no_survey(
    client: AsyncTestClient[Any], database: Database, people: int
) -> None:
    async with database.sessions() as session:
        chat = ChatSession(customer_id=people, channel="whatsapp", status="open", started_at=utc_now())
        session.add(chat)
        await session.flush()
        session.add(
            ChatMessage(
                session_id=chat.id,
                author="staff",
                staff_id=1,
                body="Your order is ready",
                created_at=utc_now(),
            )
        )
        await session.commit()
    await resolve_chat(desk(client, database), chat.id, AGENT, now=utc_now())
    chat = await the_chat(database)
    assert chat.status == "closed" and chat.csat_requested_at is None
    async with database.read_sessions() as session:
        assert list(await session.scalars(select(CustomerCommunication))) == []
