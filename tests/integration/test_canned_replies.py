"""Canned replies, internal notes, delivery status and `chat open` on a real database, over HTTP where the
dashboard is concerned, on both engines."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from api.app import create_app
from api.auth import login_link
from bot.commands.context import CommandContext
from bot.console import ask, render_reply
from domain.canned_replies.model import CannedActor, CannedReplyDraft
from domain.canned_replies.use_cases import create_canned_reply
from domain.consent.ledger import record_consent
from domain.conversations.desk import DeskError
from domain.conversations.opening import open_conversation
from domain.conversations.use_cases import DeskActor
from domain.vocabulary import Channel, ConsentStatus
from storage.database import Database
from storage.models import (
    AuditLog,
    CannedReply,
    ChatMessage,
    ChatSession,
    Customer,
    CustomerCommunication,
    Location,
    StaffUser,
)
from storage.queries.canned_replies import conversation_customer, search_canned_replies
from storage.queries.chats import chat_conversation
from storage.seeding import SeedPlan, seed_database
from storage.units import UnitsOfWork
from switchboard.settings import Settings
from tests.notices import said_after

Client = AsyncTestClient[Any]
MANAGER = "markus.brandt@northwind.example"
AGENT = "lena.hoffmann@northwind.example"
VIEWER = "finance@northwind.example"


@dataclass(frozen=True)
class Seeded:
    settings: Settings
    chat_id: int
    customer_id: int
    staff: dict[str, int]


@pytest.fixture
async def seeded(database_url: str) -> Seeded:
    database = Database.connect(database_url)
    await seed_database(database, SeedPlan(customers=20, days=20, seed=4, end_date=datetime.now(UTC).date()))
    now = datetime.now(UTC)
    async with database.sessions() as session:
        clinic = await session.scalar(select(Location.id).order_by(Location.id).limit(1))
        customer = Customer(
            name="Ada Lovelace",
            phone_e164="+4915100000077",
            email="ada@example.com",
            timezone="Europe/Berlin",
            home_location_id=clinic,
        )
        session.add(customer)
        await session.flush()
        chat = ChatSession(
            customer_id=customer.id,
            channel="sms",
            status="open",
            started_at=now - timedelta(minutes=20),
            last_message_at=now - timedelta(minutes=20),
        )
        session.add(chat)
        await session.flush()
        session.add(ChatMessage(session_id=chat.id, author="customer", body="Can I move it?", created_at=now))
        await session.commit()
        staff = {e: i for i, e in (await session.execute(select(StaffUser.id, StaffUser.email))).all()}
        chat_id, customer_id = chat.id, customer.id
    await database.dispose()
    settings = Settings(database_url=database_url, sandbox=True, worker_in_process=False)  # type: ignore[arg-type]
    return Seeded(settings, chat_id, customer_id, staff)


@pytest.fixture
async def client(seeded: Seeded) -> AsyncIterator[Client]:
    async with AsyncTestClient(create_app(seeded.settings)) as test_client:
        yield test_client


async def sign_in(client: Client, seeded: Seeded, email: str) -> None:
    link = login_link(
        "http://testserver.local", seeded.settings.session_secret, seeded.staff[email], 15, datetime.now(UTC)
    )
    response = await client.get(link.removeprefix("http://testserver.local"), follow_redirects=False)
    assert response.status_code == 303, response.text


async def post_form(client: Client, page: str, action: str, data: dict[str, str]) -> Any:
    found = re.search(r'name="_csrf_token" value="([^"]+)"', (await client.get(page)).text)
    assert found
    return await client.post(action, data={**data, "_csrf_token": found.group(1)}, follow_redirects=False)


async def rows(seeded: Seeded, query: Any) -> list[Any]:
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        found = list((await session.execute(query)).all())
    await database.dispose()
    return found


async def test_the_demo_has_canned_replies_searchable_by_prefix_and_team(database: Database) -> None:
    await seed_database(database, SeedPlan(customers=5, days=5, seed=1, end_date=date(2026, 11, 23)))
    everything = await search_canned_replies(database)
    assert {"hours", "reschedule", "prices", "thanks", "results"} <= {r.shortcut for r in everything}
    assert [r.shortcut for r in await search_canned_replies(database, "/RESCH")] == ["reschedule"]
    assert [r.shortcut for r in await search_canned_replies(database, "opening")] == ["hours"]  # title prefix
    assert "results" not in {r.shortcut for r in await search_canned_replies(database, team="Front desk")}
    assert "results" in {r.shortcut for r in await search_canned_replies(database, team="Medical")}
    assert await search_canned_replies(database, "100%_") == []  # LIKE wildcards are text
    # a new one gets a fresh id on PostgreSQL too (the seeder moved the sequence past its ids)
    made = await create_canned_reply(
        UnitsOfWork(database, "UTC").canned_replies(),
        CannedReplyDraft("parking", "Parking", "Park behind {clinic}."),
        CannedActor(1, "admin@northwind.example", "cli"),
        now=datetime(2026, 11, 24, tzinfo=UTC),
    )
    async with database.read_sessions() as session:
        count = await session.scalar(select(func.count()).select_from(CannedReply))
        audited = await session.scalar(
            select(AuditLog.target).where(AuditLog.action == "canned_reply.create")
        )
    assert made.id == count and audited == f"canned_reply:{made.id}"


async def test_the_reply_box_inserts_a_filled_canned_reply_and_refuses_unfilled_variables(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, AGENT)
    page = f"/communication/chat/{seeded.chat_id}"

    found = (
        await client.get("/communication/chat/canned", params={"q": "res", "chat": seeded.chat_id})
    ).json()
    assert [o["shortcut"] for o in found] == ["reschedule", "results"]
    assert found[0]["text"].startswith("Hi Ada, no problem") and found[0]["missing"] == ["new_time"]

    picked = await client.get(page, params={"use": "reschedule"})
    assert "Hi Ada, no problem: I can move your appointment to {new_time}." in picked.text
    assert "Still to fill: {new_time}." in picked.text
    filled = await client.get(page, params={"use": "reschedule", "v_new_time": "Friday 10:30"})
    assert "move your appointment to Friday 10:30." in filled.text
    # Filled by the posted form (what the page's "Fill in" sends); bad input is a page, never a 5xx.
    posted = await post_form(
        client, page, f"{page}/canned", {"use": "reschedule", "v_new_time": "Monday 9:00"}
    )
    assert posted.status_code == 200 and "move your appointment to Monday 9:00." in posted.text
    for bad in (
        {"use": "no such shortcut!", "v_new_time": "x"},
        {"use": "reschedule", "v_new_time": "<script>alert(1)</script>" + "x" * 5000},
        {},
    ):
        answered = await post_form(client, page, f"{page}/canned", bad)
        assert answered.status_code == 200, bad
        assert "<script>alert(1)</script>" not in answered.text
    forged = await client.post(f"{page}/canned", data={"use": "reschedule"}, follow_redirects=False)
    assert forged.status_code == 403  # no CSRF token

    typed = await post_form(client, page, f"{page}/reply", {"body": "/hours", "request_key": "k1"})
    assert typed.status_code == 200 and "Inserted /hours" in typed.text
    assert "Hi Ada," in typed.text and "Lena, Northwind" in typed.text  # clinic, agent and business filled

    refused = await post_form(
        client, page, f"{page}/reply", {"body": "Moved to {new_time}, see you {date}.", "request_key": "k2"}
    )
    assert refused.status_code == 422
    assert "Fill in {new_time} and {date} before sending" in refused.text
    assert (
        await rows(
            seeded, select(CustomerCommunication.id).where(CustomerCommunication.body.like("%{new_time}%"))
        )
        == []
    )

    sent = await post_form(
        client, page, f"{page}/reply", {"body": "Moved to Friday 10:30.", "request_key": "k3"}
    )
    assert sent.status_code == 303
    shown = await client.get(page)
    assert re.search(
        r"Moved to Friday 10:30\.</div>\s*<span class=\"delivery\"><span class=\"status status-planned\">queued",
        shown.text,
    )

    unknown = await post_form(client, page, f"{page}/reply", {"body": "/nosuch", "request_key": "k4"})
    assert unknown.status_code == 422 and "There is no canned reply /nosuch" in unknown.text


async def test_an_internal_note_never_leaves_and_is_shown_as_one(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, AGENT)
    page = f"/communication/chat/{seeded.chat_id}"
    before = await rows(seeded, select(func.count()).select_from(CustomerCommunication))
    added = await post_form(client, page, f"{page}/note", {"body": "Her card expires soon; ask at the desk."})
    assert added.status_code == 303 and said_after(added)[1] == {"done": "note"}
    shown = await client.get(added.headers["location"])
    assert "has your internal note; the customer does not see it" in shown.text
    assert re.search(
        r'<li class="note"[^>]*>\s*<span class="who-said"><strong>Internal note</strong> · Lena Hoffmann',
        shown.text,
    )
    assert await rows(seeded, select(func.count()).select_from(CustomerCommunication)) == before
    [(is_note, staff_id, communication_id)] = await rows(
        seeded,
        select(ChatMessage.is_note, ChatMessage.staff_id, ChatMessage.communication_id).where(
            ChatMessage.session_id == seeded.chat_id, ChatMessage.author == "staff"
        ),
    )
    assert (is_note, staff_id, communication_id) == (True, seeded.staff[AGENT], None)
    assert await rows(
        seeded, select(AuditLog.action, AuditLog.via).where(AuditLog.action == "chat.note")
    ) == [("chat.note", "web")]
    empty = await post_form(client, page, f"{page}/note", {"body": "  "})
    assert empty.status_code == 422 and "A note needs some text" in empty.text
    database = Database.connect(seeded.settings.database_url)
    conversation = await chat_conversation(database, seeded.chat_id, None)
    await database.dispose()
    assert conversation is not None and [t.is_note for t in conversation.turns] == [False, True]


async def test_failed_delivery_is_shown_in_words_with_its_reason(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, AGENT)
    page = f"/communication/chat/{seeded.chat_id}"
    await post_form(client, page, f"{page}/reply", {"body": "Your booking is moved.", "request_key": "k5"})
    database = Database.connect(seeded.settings.database_url)
    async with database.sessions() as session:
        await session.execute(
            update(CustomerCommunication)
            .where(CustomerCommunication.body == "Your booking is moved.")
            .values(status="failed", status_reason="The number does not take SMS.")
        )
        await session.commit()
    await database.dispose()
    shown = (await client.get(page)).text
    assert '<span class="status status-failed">failed</span> The number does not take SMS.' in shown


async def test_only_managers_and_admins_manage_canned_replies(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, AGENT)
    assert (await client.get("/communication/chat/canned-replies")).status_code == 403
    await sign_in(client, seeded, MANAGER)
    admin = "/communication/chat/canned-replies"
    listed = await client.get(admin)
    assert listed.status_code == 200 and "/reschedule" in listed.text
    bad = await post_form(client, admin, admin, {"shortcut": "park", "title": "P", "body": "Hi {{ name }}"})
    assert bad.status_code == 422 and "not templates" in bad.text
    made = await post_form(
        client,
        admin,
        admin,
        {"shortcut": "park", "title": "Parking", "body": "Park at {clinic}.", "team": ""},
    )
    assert made.status_code == 303
    [(reply_id, team)] = await rows(
        seeded, select(CannedReply.id, CannedReply.team).where(CannedReply.shortcut == "park")
    )
    assert team is None
    edit = f"{admin}/{reply_id}"
    saved = await post_form(
        client,
        edit,
        edit,
        {"shortcut": "park", "title": "Parking", "body": "Park behind {clinic}.", "team": "Front desk"},
    )
    assert saved.status_code == 303
    clash = await post_form(client, edit, edit, {"shortcut": "hours", "title": "x", "body": "x"})
    assert clash.status_code == 422 and "already a canned reply with the shortcut hours" in clash.text
    deleted = await post_form(client, admin, f"{edit}/delete", {})
    assert deleted.status_code == 303
    assert await rows(seeded, select(CannedReply.id).where(CannedReply.shortcut == "park")) == []
    audited = await rows(
        seeded,
        select(AuditLog.action, AuditLog.actor)
        .where(AuditLog.target == f"canned_reply:{reply_id}")
        .order_by(AuditLog.id),
    )
    assert audited == [
        ("canned_reply.create", MANAGER),
        ("canned_reply.update", MANAGER),
        ("canned_reply.delete", MANAGER),
    ]


async def test_chat_open_from_the_staff_chat(seeded: Seeded) -> None:
    database = Database.connect(seeded.settings.database_url)
    ctx = CommandContext(seeded.settings, database)
    agent = seeded.staff[AGENT]

    async def say(text: str, who: str = AGENT) -> tuple[str, str]:
        reply = await ask(ctx, text, as_email=who)
        shown = render_reply(reply)
        assert "Traceback" not in shown
        return reply.kind, shown

    kind, own = await say(f"chat open #{seeded.customer_id}")  # the SMS conversation she wrote on
    assert (
        f"already has conversation {seeded.chat_id} open on SMS" in own
        and "Agent         Lena Hoffmann" in own
    )
    kind, shown = await say("chat open ada@example.com on email")
    assert (
        kind == "answer"
        and "Opened conversation" in shown
        and "on email (the channel you asked for)" in shown
    )
    [(chat_id, status, assigned)] = await rows_of(
        database,
        select(ChatSession.id, ChatSession.status, ChatSession.assigned_staff_id).where(
            ChatSession.customer_id == seeded.customer_id, ChatSession.channel == "email"
        ),
    )
    assert (status, assigned) == ("open", agent) and f"/communication/chat/{chat_id}" in shown

    kind, again = await say("chat open ada@example.com on email")
    assert f"already has conversation {chat_id} open on email" in again

    await record_consent(
        UnitsOfWork(database, "UTC").conversations(),
        seeded.customer_id,
        Channel.SMS,
        ConsentStatus.OPTED_OUT,
        "sms_keyword",
        "STOP",
        datetime(2026, 3, 1, tzinfo=UTC),
    )
    kind, refused = await say(f"chat open #{seeded.customer_id} on sms")
    assert kind == "error" and "Ada Lovelace opted out of SMS on 1 Mar 2026" in refused
    kind, refused = await say(f"chat open #{seeded.customer_id} on telegram")
    assert kind == "error" and "has no Telegram chat" in refused
    kind, refused = await say("chat open nobody-like-this@example.com")
    assert kind == "error" and "No customer matches" in refused
    kind, refused = await say("chat open ada@example.com", VIEWER)
    assert kind == "denied"

    kind, filled = await say(f"canned resch for {chat_id}")
    assert "Hi Ada, no problem" in filled and re.search(r"Still to fill +\{new_time\}$", filled, re.MULTILINE)
    assert filled.count("Still to fill") == 1, filled
    kind, denied = await say(f"canned resch for {chat_id}", VIEWER)
    assert kind == "denied" and "Ada" not in denied
    kind, listing = await say("canned", VIEWER)
    assert "hours" in listing and "reschedule" in listing

    opens = await rows_of(
        database, select(AuditLog.actor, AuditLog.via).where(AuditLog.action == "chat.open")
    )
    assert opens == [(AGENT, "cli")] * 3
    await database.dispose()


async def test_two_opens_at_once_make_one_conversation(seeded: Seeded) -> None:
    import asyncio

    database = Database.connect(seeded.settings.database_url)
    units = UnitsOfWork(database, "UTC")
    actor = DeskActor(seeded.staff[AGENT], AGENT, "slack")
    now = datetime.now(UTC)
    opened = await asyncio.gather(
        *(
            open_conversation(units.chat_opening(), seeded.customer_id, actor, channel=Channel.EMAIL, now=now)
            for _ in range(3)
        )
    )
    assert len({o.chat_id for o in opened}) == 1 and sum(o.created for o in opened) == 1
    with pytest.raises(DeskError, match="no customer #999999"):
        await open_conversation(units.chat_opening(), 999999, actor, now=now)
    facts = await conversation_customer(database, seeded.chat_id)
    assert facts is not None and facts.name == "Ada Lovelace" and facts.clinic
    await database.dispose()


async def rows_of(database: Database, query: Any) -> list[Any]:
    async with database.read_sessions() as session:
        return list((await session.execute(query)).all())
