"""The website chat widget over HTTP on a real database: keys and origins, limits, retries stored once,
replies that go to the widget (never email), and a live stream that resumes where it left off."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from api.app import create_app
from api.widget.routes import NEW_VISITS_PER_MINUTE, PACE, VISIT_PACE
from domain.conversations.use_cases import reply_in_chat
from domain.delivery.dispatch import Dispatcher
from domain.delivery.pacing import TokenBucket
from domain.vocabulary import Channel
from domain.widget.use_cases import create_widget_key
from providers.widget.driver import WidgetDriver
from reports.periods import TimeRange
from reports.query import MetricQuery, run_query
from storage.database import Database
from storage.models import (
    AuditLog,
    ChatAttachment,
    ChatMessage,
    ChatSession,
    ChatWidgetKey,
    ChatWidgetVisitor,
    Customer,
    CustomerCommunication,
    Location,
    StaffUser,
)
from storage.widget_visits import widget_unit
from switchboard.settings import Settings
from switchboard.wiring import build_container

PUBLIC_URL = "http://testserver.local"
SITE = "https://clinic.example"
KEY = "clinic-key-1"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, public_url=PUBLIC_URL, environment="test", worker_in_process=False
    )


@pytest.fixture
async def client(settings: Settings, database: Database) -> AsyncIterator[AsyncTestClient[Any]]:
    async with database.sessions() as session:
        session.add_all(
            [
                ChatWidgetKey(key=KEY, name="Clinic website", allowed_origins=[SITE], enabled=True),
                ChatWidgetKey(key="switched-off", name="Old site", allowed_origins=[SITE], enabled=False),
                StaffUser(id=1, email="lena@x.example", name="Lena", role="agent", availability="online"),
            ]
        )
        await session.commit()
    VISIT_PACE.sent.clear()  # the paces are per process: each test starts with fresh ones
    PACE.sent.clear()
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


async def post(client: AsyncTestClient[Any], path: str, body: dict[str, Any], origin: str = SITE) -> Any:
    return await client.post(
        path, content=json.dumps(body), headers={"Origin": origin, "Content-Type": "text/plain;charset=UTF-8"}
    )


async def visit(client: AsyncTestClient[Any], **extra: Any) -> dict[str, Any]:
    response = await post(client, "/widget/session", {"key": KEY, **extra})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == SITE
    answer: dict[str, Any] = response.json()
    return answer


async def stream(
    client: AsyncTestClient[Any], token: str, *, after: int = 0, last_event_id: str | None = None
) -> list[tuple[int, dict[str, Any]]]:
    """One short-held SSE connection: the (id, turn) events it delivered."""
    headers = {"Origin": SITE}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    response = await client.get(
        "/widget/events", params={"key": KEY, "token": token, "after": after, "hold": 0}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":")
        )
        if fields.get("event") == "turn":
            events.append((int(fields["id"]), json.loads(fields["data"])))
    return events


async def count(database: Database, *where: Any) -> int:
    async with database.read_sessions() as session:
        return int(await session.scalar(select(func.count(CustomerCommunication.id)).where(*where)) or 0)


async def hand_replies_to_widgets(settings: Settings) -> int:
    """What the worker does: claim the website-chat replies and hand them to the widget driver."""
    container = build_container(settings)
    try:
        dispatcher = Dispatcher(
            open_uow=container.unit_of_work,
            drivers={Channel.CHAT: WidgetDriver()},
            pacing={Channel.CHAT: TokenBucket(100.0)},
            worker_id="test-worker",
        )
        return await dispatcher.deliver_batch()
    finally:
        await container.close()


async def staff_reply(settings: Settings, chat_id: int, body: str, key: str = "r1") -> int:
    container = build_container(settings)
    try:
        result = await reply_in_chat(
            container.units.chat_replies(),
            chat_id,
            staff_id=1,
            staff_email="lena@x.example",
            body=body,
            request_key=key,
            business_name="Northwind",
            now=datetime.now(UTC),
            policy=container.consent_policy(),
        )
    finally:
        await container.close()
    assert result.message_id is not None
    return result.message_id


async def test_a_wrong_key_a_switched_off_key_and_a_foreign_origin_are_refused_in_words(
    client: AsyncTestClient[Any],
) -> None:
    unknown = await post(client, "/widget/session", {"key": "no-such-key"})
    assert unknown.status_code == 404
    assert "not known" in unknown.json()["error"]
    off = await post(client, "/widget/session", {"key": "switched-off"})
    assert off.status_code == 403
    assert "switched off" in off.json()["error"]
    foreign = await post(client, "/widget/session", {"key": KEY}, origin="https://evil.example")
    assert foreign.status_code == 403
    assert "https://evil.example" in foreign.json()["error"]
    assert "access-control-allow-origin" not in foreign.headers
    events = await client.get(
        "/widget/events",
        params={"key": KEY, "token": "x", "hold": 0},
        headers={"Origin": "https://evil.example"},
    )
    assert events.status_code == 403
    stranger = await client.get("/widget/events", params={"key": KEY, "token": "not-a-token", "hold": 0})
    assert stranger.status_code == 401
    garbage = await post(client, "/widget/session", {"nothing": True})
    assert garbage.status_code == 422
    # Switchboard's own demo page may always use a key (the request comes from our own origin).
    own = await post(client, "/widget/session", {"key": KEY}, origin=PUBLIC_URL)
    assert own.status_code == 200


async def test_a_visitor_writes_once_however_often_the_post_is_retried_and_it_reaches_an_agent(
    client: AsyncTestClient[Any], database: Database
) -> None:
    session = await visit(client)
    token = session["token"]
    assert session["online"] is True and session["turns"] == []
    message = {"key": KEY, "token": token, "id": "msg-0001-abcd", "text": "Do you have parking?"}
    first = await post(client, "/widget/messages", message)
    assert first.status_code == 201, first.text
    again = await post(client, "/widget/messages", message)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert await count(database, CustomerCommunication.channel == "chat") == 1
    async with database.read_sessions() as db:
        visitor = (await db.scalars(select(ChatWidgetVisitor))).one()
        assert visitor.token_hash != token  # only the hash is kept
        chat = (
            await db.scalars(select(ChatSession).where(ChatSession.customer_id == visitor.customer_id))
        ).one()
        turns = list(await db.scalars(select(ChatMessage.body).where(ChatMessage.session_id == chat.id)))
        created = await db.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "widget.visitor"))
    assert chat.channel == "chat" and chat.assigned_staff_id == 1  # auto-assigned to the online agent
    assert turns == ["Do you have parking?"]
    assert created == 1

    too_long = await post(client, "/widget/messages", {**message, "id": "msg-0002-abcd", "text": "x" * 4001})
    assert too_long.status_code == 413
    assert "4,001 characters" in too_long.json()["error"]
    empty = await post(client, "/widget/messages", {**message, "id": "msg-0003-abcd", "text": "   "})
    assert empty.status_code == 422
    bad_id = await post(client, "/widget/messages", {**message, "id": "x"})
    assert bad_id.status_code == 422
    assert await count(database, CustomerCommunication.channel == "chat") == 1


async def test_a_staff_reply_goes_to_the_widget_never_to_email_and_the_widget_confirms_it(
    client: AsyncTestClient[Any], database: Database, settings: Settings
) -> None:
    session = await visit(client, name="Ada Lovelace", email="ada@example.com")
    token = session["token"]
    sent = await post(
        client, "/widget/messages", {"key": KEY, "token": token, "id": "ada-00000001", "text": "Hi"}
    )
    assert sent.status_code == 201
    async with database.read_sessions() as db:
        customer = (await db.scalars(select(Customer).where(Customer.email == "ada@example.com"))).one()
        chat_id = (
            await db.scalars(select(ChatSession.id).where(ChatSession.customer_id == customer.id))
        ).one()
    assert customer.name == "Ada Lovelace"

    reply_id = await staff_reply(settings, chat_id, "Yes, behind the clinic.")
    assert await count(database, CustomerCommunication.channel == "email") == 0
    async with database.read_sessions() as db:
        reply = await db.get(CustomerCommunication, reply_id)
    assert reply is not None and reply.channel == "chat" and reply.direction == "outbound"
    assert reply.status == "planned"
    # Not handed over yet: the stream holds it back rather than skip past it.
    assert [turn["body"] for _, turn in await stream(client, token)] == ["Hi"]

    assert await hand_replies_to_widgets(settings) == 1
    events = await stream(client, token)
    assert [(turn["mine"], turn["body"]) for _, turn in events] == [
        (True, "Hi"),
        (False, "Yes, behind the clinic."),
    ]
    assert events[0][1]["client_id"] == "ada-00000001"
    async with database.read_sessions() as db:
        reply = await db.get(CustomerCommunication, reply_id)
    assert reply is not None and reply.status == "sent" and reply.provider == "internal"

    delivered = await post(client, "/widget/receipts", {"key": KEY, "token": token, "delivered": [reply_id]})
    assert delivered.json() == {"applied": 1}
    read = await post(
        client, "/widget/receipts", {"key": KEY, "token": token, "delivered": [reply_id], "read": [reply_id]}
    )
    assert read.json() == {"applied": 1}  # delivered again changes nothing
    async with database.read_sessions() as db:
        reply = await db.get(CustomerCommunication, reply_id)
    assert reply is not None and reply.status == "read"

    # Another visitor cannot confirm (or learn about) Ada's replies.
    other = (await visit(client))["token"]
    assert (
        await post(client, "/widget/receipts", {"key": KEY, "token": other, "read": [reply_id]})
    ).json() == {"applied": 0}
    assert await stream(client, other) == []


async def test_the_stream_resumes_after_the_last_event_id_without_missing_or_repeating(
    client: AsyncTestClient[Any], database: Database, settings: Settings
) -> None:
    token = (await visit(client))["token"]
    for number in range(1, 4):
        response = await post(
            client,
            "/widget/messages",
            {"key": KEY, "token": token, "id": f"turn-000{number}", "text": f"Turn {number}"},
        )
        assert response.status_code == 201
    everything = await stream(client, token)
    assert [turn["body"] for _, turn in everything] == ["Turn 1", "Turn 2", "Turn 3"]
    first_id = everything[0][0]

    resumed = await stream(client, token, last_event_id=str(first_id))
    assert [turn["body"] for _, turn in resumed] == ["Turn 2", "Turn 3"]
    # Last-Event-ID (sent by the browser on reconnect) wins over the page's first `after`.
    assert [i for i, _ in await stream(client, token, after=0, last_event_id=str(everything[-1][0]))] == []

    # A returning visitor gets the history and the position to stream from.
    again = await visit(client, token=token)
    assert again["token"] == token
    assert [turn["body"] for turn in again["turns"]] == ["Turn 1", "Turn 2", "Turn 3"]
    assert await stream(client, token, after=again["position"]) == []


async def test_with_nobody_online_the_offline_form_keeps_the_message_with_the_visitors_name_and_email(
    client: AsyncTestClient[Any], database: Database
) -> None:
    async with database.sessions() as session:
        agent = await session.get(StaffUser, 1)
        assert agent is not None
        agent.availability = "away"
        await session.commit()
    assert (await visit(client))["online"] is False
    missing = await post(client, "/widget/offline", {"key": KEY, "id": "offline-0001", "text": "Call me"})
    assert missing.status_code == 422
    left = await post(
        client,
        "/widget/offline",
        {
            "key": KEY,
            "id": "offline-0002",
            "text": "Please call me back",
            "name": "Bo",
            "email": "bo@example.com",
        },
    )
    assert left.status_code == 201, left.text
    token = left.json()["token"]
    async with database.read_sessions() as db:
        customer = (await db.scalars(select(Customer).where(Customer.email == "bo@example.com"))).one()
        chat = (await db.scalars(select(ChatSession).where(ChatSession.customer_id == customer.id))).one()
    assert customer.name == "Bo"
    assert chat.channel == "chat" and chat.status == "open" and chat.assigned_staff_id is None
    assert [turn["body"] for _, turn in await stream(client, token)] == ["Please call me back"]


async def test_the_script_and_the_demo_page_are_served(client: AsyncTestClient[Any]) -> None:
    script = await client.get("/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    assert "EventSource" in script.text
    demo = await client.get("/widget/demo")
    assert demo.status_code == 200
    assert f'data-key="{KEY}"' in demo.text
    assert "script-src 'self'" in demo.headers["content-security-policy"]


async def new_customers_kpi(database: Database) -> float:
    """The new_customers KPI over the hour around now, as the dashboard reads it."""
    now = datetime.now(UTC)
    period = TimeRange(now - timedelta(minutes=30), now + timedelta(minutes=30), "around now", "UTC")
    result = await run_query(database, MetricQuery(("new_customers",), period), now=now, business_tz="UTC")
    (series,) = result.series
    return float(series.total or 0)


async def customer_rows(database: Database) -> int:
    async with database.read_sessions() as db:
        return int(await db.scalar(select(func.count(Customer.id))) or 0)


async def test_opening_the_widget_makes_no_customer_and_writing_makes_one_once(
    client: AsyncTestClient[Any], database: Database
) -> None:
    assert await customer_rows(database) == 0 and await new_customers_kpi(database) == 0
    curious = [(await visit(client))["token"] for _ in range(3)]
    reopened = await visit(client, token=curious[0])
    assert reopened["token"] == curious[0] and reopened["turns"] == []
    assert await customer_rows(database) == 0
    assert await new_customers_kpi(database) == 0  # sessions alone are no new customers
    assert await stream(client, curious[1]) == []  # a visitor who has not written streams nothing
    assert (
        await post(client, "/widget/receipts", {"key": KEY, "token": curious[1], "read": [1]})
    ).json() == {"applied": 0}
    async with database.read_sessions() as db:
        visitors = list(await db.scalars(select(ChatWidgetVisitor)))
    assert len(visitors) == 3 and all(v.customer_id is None for v in visitors)

    token = curious[0]
    for number in range(1, 3):
        sent = await post(
            client,
            "/widget/messages",
            {"key": KEY, "token": token, "id": f"first-000{number}", "text": f"Hello {number}"},
        )
        assert sent.status_code == 201, sent.text
    async with database.read_sessions() as db:
        customers = list(await db.scalars(select(Customer)))
        visitor = (
            await db.scalars(select(ChatWidgetVisitor).where(ChatWidgetVisitor.customer_id.is_not(None)))
        ).one()
        made = await db.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "widget.customer"))
    assert len(customers) == 1 and visitor.customer_id == customers[0].id
    assert customers[0].name == "Website visitor" and customers[0].home_location_id is None
    assert made == 1
    assert await new_customers_kpi(database) == 1
    # The returning visitor now sees their history.
    assert [t["body"] for t in (await visit(client, token=token))["turns"]] == ["Hello 1", "Hello 2"]
    assert await customer_rows(database) == 1


async def test_new_visits_are_paced_per_client_address_and_returning_visitors_are_not(
    client: AsyncTestClient[Any], database: Database
) -> None:
    try:
        tokens = [(await visit(client))["token"] for _ in range(NEW_VISITS_PER_MINUTE)]
        refused = await post(client, "/widget/session", {"key": KEY})
        assert refused.status_code == 429
        assert "please wait a minute" in refused.json()["error"]
        assert refused.headers["access-control-allow-origin"] == SITE  # the widget can read why
        offline = await post(
            client,
            "/widget/offline",
            {"key": KEY, "id": "offline-0009", "text": "Hi", "name": "Cy", "email": "cy@example.com"},
        )
        assert offline.status_code == 429
        # A visitor who already has a token is no new visit: they resume as always.
        assert (await visit(client, token=tokens[0]))["token"] == tokens[0]
        async with database.read_sessions() as db:
            assert (
                int(await db.scalar(select(func.count(ChatWidgetVisitor.id))) or 0) == NEW_VISITS_PER_MINUTE
            )
        assert await customer_rows(database) == 0
    finally:
        VISIT_PACE.sent.clear()


async def test_a_visitor_through_a_clinics_key_belongs_to_that_clinic_and_its_free_agent_gets_the_chat(
    client: AsyncTestClient[Any], database: Database, settings: Settings
) -> None:
    async with database.sessions() as session:
        session.add_all(
            [
                Location(id=1, code="BER", name="Berlin Mitte", country="DE", timezone="Europe/Berlin"),
                Location(id=2, code="LON", name="London Camden", country="GB", timezone="Europe/London"),
            ]
        )
        await session.flush()
        lena = await session.get(StaffUser, 1)
        assert lena is not None
        lena.location_id = 1
        session.add(
            StaffUser(
                id=2, email="max@x.example", name="Max", role="agent", availability="online", location_id=2
            )
        )
        await session.commit()
    container = build_container(settings)
    try:  # as `switchboard widget-key create --location LON` does
        london = await create_widget_key(
            widget_unit(container.units),
            name="London site",
            origins=[SITE],
            actor="cli",
            via="cli",
            now=datetime.now(UTC),
            location="LON",
        )
    finally:
        await container.close()
    assert london.location_id == 2
    token = (await post(client, "/widget/session", {"key": london.key})).json()["token"]
    assert await customer_rows(database) == 0
    sent = await post(
        client, "/widget/messages", {"key": london.key, "token": token, "id": "london-0001", "text": "Hi"}
    )
    assert sent.status_code == 201, sent.text
    async with database.read_sessions() as db:
        customer = (await db.scalars(select(Customer))).one()
        chat = (await db.scalars(select(ChatSession).where(ChatSession.customer_id == customer.id))).one()
    assert customer.home_location_id == 2
    # Lena (Berlin) and Max (London) are both free; the customer's home clinic puts the chat with Max.
    assert chat.assigned_staff_id == 2


#: A one-page PDF, as the attachment rules recognise one by its first bytes.
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def send_file(
    client: AsyncTestClient[Any], token: str | None, client_id: str, name: str, content: bytes, **extra: str
) -> Any:
    params = {"key": KEY, "id": client_id, "name": name, **({"token": token} if token else {}), **extra}
    return await client.post(
        "/widget/files",
        params=params,
        content=content,
        headers={"Origin": SITE, "Content-Type": "text/plain"},
    )


async def test_a_visitor_sends_an_image_or_pdf_kept_once_and_bad_files_are_refused_in_words(
    client: AsyncTestClient[Any], database: Database, settings: Settings
) -> None:
    token = (await visit(client))["token"]
    first = await send_file(client, token, "file-0001-abcd", "referral.pdf", PDF, text="My referral")
    assert first.status_code == 201, first.text
    assert first.headers["access-control-allow-origin"] == SITE
    again = await send_file(client, token, "file-0001-abcd", "referral.pdf", PDF, text="My referral")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    only_file = await send_file(client, token, "file-0002-abcd", "scan.pdf", PDF)
    assert only_file.status_code == 201, only_file.text
    async with database.read_sessions() as db:
        turns = list(await db.scalars(select(ChatMessage.body).where(ChatMessage.author == "customer")))
        kept = (await db.execute(select(ChatAttachment.filename, ChatAttachment.content))).all()
    assert turns == ["My referral", "[file: scan.pdf]"]
    assert sorted((name, content) for name, content in kept) == [("referral.pdf", PDF), ("scan.pdf", PDF)]

    program = await send_file(client, token, "file-0003-abcd", "photo.png", b"MZ\x90\x00" + bytes(300))
    assert program.status_code == 422 and "was not kept" in program.json()["error"]
    empty = await send_file(client, token, "file-0004-abcd", "empty.pdf", b"")
    assert empty.status_code == 422 and empty.json()["error"] == "The file is empty."
    stranger = await send_file(client, "not-a-token", "file-0005-abcd", "scan.pdf", PDF)
    assert stranger.status_code == 401
    foreign = await client.post(
        "/widget/files",
        params={"key": KEY, "id": "file-0006-abcd", "name": "scan.pdf", "token": token},
        content=PDF,
        headers={"Origin": "https://elsewhere.example", "Content-Type": "text/plain"},
    )
    assert foreign.status_code == 403
    small = settings.model_copy(update={"attachment_max_bytes": 20})
    async with AsyncTestClient(create_app(small)) as limited:
        too_large = await send_file(limited, token, "file-0007-abcd", "scan.pdf", PDF)
    assert too_large.status_code == 422 and "files up to 20 bytes" in too_large.json()["error"]
    async with database.read_sessions() as db:
        assert int(await db.scalar(select(func.count(ChatAttachment.id))) or 0) == 2
