"""The live inbox on SQLite and PostgreSQL: a conversation's and a queue's server-sent events (session auth, a
customer's WhatsApp message arriving through the webhook as an event, Last-Event-ID resume, nothing twice), and
the customer card beside a conversation, recounted from raw rows."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from api.app import create_app
from api.auth import login_link
from storage.database import Database
from storage.models import (
    Appointment,
    ChatMessage,
    ChatSession,
    CommunicationPreference,
    Customer,
    CustomerConsent,
    Order,
    Service,
    StaffUser,
)
from storage.queries.customer_card import customer_card
from storage.seeding import SeedPlan, seed_database
from switchboard.settings import Settings
from tests.integration.test_webhooks import WA_ID, post_whatsapp, wa_text, whatsapp_body

Client = AsyncTestClient[Any]
AGENT = "lena.hoffmann@northwind.example"
VIEWER = "finance@northwind.example"


@pytest.fixture
async def settings(database: Database, database_url: str) -> Settings:
    await seed_database(database, SeedPlan(customers=15, days=30, seed=11, end_date=datetime.now(UTC).date()))
    return Settings(database_url=database_url, environment="test", worker_in_process=False)  # type: ignore[arg-type]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


async def busiest_customer(database: Database) -> int:
    """The seeded customer with the most orders, who from now on writes on WhatsApp as WA_ID."""
    async with database.sessions() as session:
        customer_id = (
            await session.execute(
                select(Order.customer_id)
                .group_by(Order.customer_id)
                .order_by(func.count().desc(), Order.customer_id)
                .limit(1)
            )
        ).scalar_one()
        await session.execute(update(Customer).where(Customer.id == customer_id).values(whatsapp_id=WA_ID))
        await session.commit()
    return int(customer_id)


async def sign_in(client: Client, database: Database, settings: Settings, email: str) -> None:
    async with database.read_sessions() as session:
        staff_id = (await session.execute(select(StaffUser.id).where(StaffUser.email == email))).scalar_one()
    link = login_link("http://testserver.local", settings.session_secret, staff_id, 15, datetime.now(UTC))
    response = await client.get(link.removeprefix("http://testserver.local"), follow_redirects=False)
    assert response.status_code == 303


async def customer_writes(client: Client, settings: Settings, wamid: str, text: str) -> int:
    """A WhatsApp message through the real webhook; the conversation it landed in."""
    response = await post_whatsapp(client, settings, whatsapp_body(messages=[wa_text(wamid, text)]))
    assert response.status_code == 200, response.text
    database = Database.connect(settings.database_url)
    try:
        async with database.read_sessions() as session:
            return int(
                (
                    await session.execute(
                        select(ChatMessage.session_id)
                        .where(ChatMessage.body == text)
                        .order_by(ChatMessage.id)
                    )
                ).scalar_one()
            )
    finally:
        await database.dispose()


def events_of(text: str) -> list[tuple[str | None, str, dict[str, Any]]]:
    """(id, event, data) of each event in an SSE body."""
    found = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":")
        )
        if "event" in fields:
            found.append((fields.get("id"), fields["event"], json.loads(fields["data"])))
    return found


async def stream(
    client: Client, path: str, last_id: str | None = None
) -> list[tuple[str | None, str, dict[str, Any]]]:
    """One short-held connection (hold=0: one poll, then the stream ends)."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    response = await client.get(path, params={"hold": 0}, headers=headers, follow_redirects=False)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return events_of(response.text)


async def test_a_conversation_streams_each_new_turn_once_and_resumes(
    client: Client, database: Database, settings: Settings
) -> None:
    await busiest_customer(database)
    chat_id = await customer_writes(client, settings, "wamid.live1", "Is my order on its way?")
    events = f"/communication/chat/{chat_id}/events"

    anonymous = await client.get(events, params={"hold": 0}, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    assert "text/event-stream" not in anonymous.headers.get("content-type", "")

    await sign_in(client, database, settings, VIEWER)  # viewers may watch (they cannot act)
    first = await stream(client, events)
    turns = [(event_id, data) for event_id, kind, data in first if kind == "turn"]
    assert [data["body"] for _, data in turns] == ["Is my order on its way?"]
    assert turns[0][1]["from_customer"] is True and turns[0][0] == str(turns[0][1]["id"])
    states = [data for _, kind, data in first if kind == "state"]
    assert len(states) == 1 and states[0]["status"] == "open"
    last_id = turns[-1][0]
    assert last_id is not None

    # Nothing new: a reconnect naming the last turn gets no turn at all (only the desk's state).
    again = await stream(client, events, last_id)
    assert [kind for _, kind, _ in again] == ["state"]

    # The customer writes again: the resumed stream carries exactly that turn; from the page's own
    # starting point (after=) both follow, each once.
    assert await customer_writes(client, settings, "wamid.live2", "Hello? <b>anyone</b>") == chat_id
    resumed = [(i, d) for i, kind, d in await stream(client, events, last_id) if kind == "turn"]
    assert [d["body"] for _, d in resumed] == ["Hello? <b>anyone</b>"]
    assert int(resumed[0][0] or 0) > int(last_id)
    whole = [d["id"] for _, kind, d in await stream(client, f"{events}?after=0") if kind == "turn"]
    async with database.read_sessions() as session:
        stored = list(
            await session.scalars(
                select(ChatMessage.id).where(ChatMessage.session_id == chat_id).order_by(ChatMessage.id)
            )
        )
    assert whole == stored and len(set(whole)) == len(whole) == 2

    # A desk move shows as a new state on the next poll.
    await sign_in(client, database, settings, AGENT)
    page = await client.get(f"/communication/chat/{chat_id}")
    token = page.text.split('name="_csrf_token" value="', 1)[1].split('"', 1)[0]
    moved = await client.post(
        f"/communication/chat/{chat_id}/desk/resolve", data={"_csrf_token": token}, follow_redirects=False
    )
    assert moved.status_code == 303
    state = [d for _, kind, d in await stream(client, events, str(stored[-1])) if kind == "state"]
    assert state[0]["resolved"] is True and state[0]["status_label"] == "resolved"

    missing = await client.get("/communication/chat/999999/events", params={"hold": 0})
    assert missing.status_code == 404


async def test_a_queue_streams_its_counts_and_rows_when_they_change(
    client: Client, database: Database, settings: Settings
) -> None:
    await busiest_customer(database)
    await sign_in(client, database, settings, AGENT)
    first = await stream(client, "/communication/chat/events?view=open")
    assert [kind for _, kind, _ in first] == ["queue"]
    digest, _, snapshot = first[0]
    async with database.read_sessions() as session:
        live = await session.scalar(
            select(func.count()).select_from(ChatSession).where(ChatSession.status.in_(("open", "pending")))
        )
        resolved = await session.scalar(
            select(func.count()).select_from(ChatSession).where(ChatSession.status == "closed")
        )
    assert snapshot["counts"]["open"] == live and snapshot["counts"]["resolved"] == resolved
    assert len(snapshot["rows"]) == min(int(live or 0), 200)

    # Reconnecting with what it already shows: nothing is sent again.
    assert await stream(client, "/communication/chat/events?view=open", digest) == []

    chat_id = await customer_writes(client, settings, "wamid.queue1", "New here, a question")
    changed = await stream(client, "/communication/chat/events?view=open", digest)
    assert len(changed) == 1 and changed[0][0] != digest
    data = changed[0][2]
    assert data["counts"]["open"] == snapshot["counts"]["open"] + 1
    row = next(r for r in data["rows"] if r["id"] == chat_id)
    assert row["cells"][2]["text"] == "WhatsApp" and row["cells"][3]["status"] == "open"

    overview = await stream(client, "/communication/chat/events")
    assert any(r["id"] == chat_id for r in overview[0][2]["rows"])


async def test_the_customer_card_recounts_from_raw_rows(
    client: Client, database: Database, settings: Settings
) -> None:
    customer_id = await busiest_customer(database)
    chat_id = await customer_writes(client, settings, "wamid.card1", "About my last order")
    async with database.sessions() as session:  # a second, unfinished conversation on another channel
        other = ChatSession(
            customer_id=customer_id,
            channel="sms",
            status="snoozed",
            started_at=datetime.now(UTC),
            last_message_at=datetime.now(UTC),
        )
        session.add(other)
        service = (await session.scalars(select(Service).order_by(Service.id).limit(1))).one()
        for days in range(-4, 3):  # seven visits, past and booked: the card shows the latest five
            session.add(
                Appointment(
                    customer_id=customer_id,
                    service_id=service.id,
                    kind=service.kind,
                    status="booked" if days > 0 else "completed",
                    scheduled_at=datetime.now(UTC) + timedelta(days=days * 9),
                    duration_minutes=service.duration_minutes,
                    price_minor=service.price_minor + days,
                    currency=service.currency,
                )
            )
        model = (await session.scalars(select(Order).where(Order.customer_id == customer_id).limit(1))).one()
        for days in range(1, 7):  # six more orders: the card shows the latest five
            session.add(
                Order(
                    order_number=f"LIVE-{customer_id}-{days}",
                    customer_id=customer_id,
                    status=model.status,
                    source_channel=model.source_channel,
                    amount_minor=123_456 + days,
                    currency=model.currency,
                    created_at=datetime.now(UTC) - timedelta(hours=days * 7),
                )
            )
        await session.commit()
        other_id = other.id

    card = await customer_card(database, customer_id, chat_id)
    assert card is not None
    async with database.read_sessions() as session:
        orders = list(await session.scalars(select(Order).where(Order.customer_id == customer_id)))
        appointments = list(
            await session.scalars(select(Appointment).where(Appointment.customer_id == customer_id))
        )
        consents = list(
            await session.scalars(select(CustomerConsent).where(CustomerConsent.customer_id == customer_id))
        )
        preference = await session.get(CommunicationPreference, customer_id)
        unfinished = list(
            await session.scalars(
                select(ChatSession.id).where(
                    ChatSession.customer_id == customer_id,
                    ChatSession.id != chat_id,
                    ChatSession.status.in_(("open", "pending", "snoozed")),
                )
            )
        )
    latest_orders = sorted(orders, key=lambda o: (o.created_at, o.id), reverse=True)[:5]
    assert len(orders) > 5 and len(appointments) >= 7 and consents  # so the card has something to show
    assert [o.id for o in card.orders] == [o.id for o in latest_orders]
    assert [o.amount_minor for o in card.orders] == [o.amount_minor for o in latest_orders]
    latest_visits = sorted(appointments, key=lambda a: (a.scheduled_at, a.id), reverse=True)[:5]
    assert [a.id for a in card.appointments] == [a.id for a in latest_visits]
    assert len(card.appointments) == 5 and card.appointments[0].price_minor == latest_visits[0].price_minor
    assert {(c.channel, c.status) for c in card.preferences.consents} == {
        (c.channel, c.status) for c in consents
    }
    assert card.preferences.preferred_channel == (preference.preferred_channel if preference else None)
    assert card.preferences.marketing_max_per_week == (
        preference.marketing_max_per_week if preference else None
    )
    assert sorted(o.id for o in card.other_conversations) == sorted(unfinished) and other_id in unfinished

    await sign_in(client, database, settings, VIEWER)
    page = await client.get(f"/communication/chat/{chat_id}")
    assert page.status_code == 200
    html = page.text
    assert 'class="customer-card"' in html and f'href="/communication/chat/{other_id}"' in html
    newest = latest_orders[0]
    amount = f"{newest.amount_minor / 100:,.2f}"  # the seed sells in EUR; de-style or en-style digits
    assert newest.order_number in html
    assert amount in html or amount.replace(",", "X").replace(".", ",").replace("X", ".") in html
    assert f'data-live-events="/communication/chat/{chat_id}/events?after=' in html
