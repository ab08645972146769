"""The agent desk on a real database: a customer's message is assigned, snoozed ones wake, resolved ones reopen."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from domain.conversations.model import CustomerMessage
from domain.conversations.use_cases import (
    DeskActor,
    InboundPolicy,
    assign_chat,
    handle_customer_message,
    resolve_chat,
    set_availability,
    snooze_chat,
    wake_snoozed_chats,
)
from domain.delivery.ports import InboundMessage
from domain.vocabulary import Availability, Channel, ChatStatus
from storage.database import Database
from storage.inbox import ConversationUnitOfWork
from storage.models import AuditLog, ChatMessage, ChatSession, Customer, Location, StaffUser
from storage.units import UnitsOfWork

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


async def given_staff_and_customers(database: Database) -> None:
    async with database.sessions() as session:
        session.add_all(
            [
                StaffUser(id=1, email="lena@x.example", name="Lena", role="agent", availability="online"),
                StaffUser(id=2, email="jonas@x.example", name="Jonas", role="agent", availability="online"),
                StaffUser(id=3, email="away@x.example", name="Away", role="agent", availability="away"),
                StaffUser(
                    id=4, email="viewer@x.example", name="Viewer", role="viewer", availability="online"
                ),
                Customer(id=1, name="Ada", whatsapp_id="4915100000001"),
                Customer(id=2, name="Bo", whatsapp_id="4915100000002"),
                Customer(id=3, name="Cy", whatsapp_id="4915100000003"),
            ]
        )
        await session.commit()


async def customer_writes(database: Database, whatsapp_id: str, text: str, at: datetime) -> int:
    message = InboundMessage(
        "whatsapp_cloud",
        Channel.WHATSAPP,
        f"wamid.{whatsapp_id}.{at.timestamp()}",
        whatsapp_id,
        "us",
        text,
        at,
    )
    async with ConversationUnitOfWork(UnitsOfWork(database, "UTC").general()) as uow:
        await handle_customer_message(uow, CustomerMessage(message), InboundPolicy("Northwind"), at)
        await uow.commit()
    async with database.read_sessions() as session:
        chat_id = await session.scalar(
            select(ChatSession.id)
            .join(Customer, Customer.id == ChatSession.customer_id)
            .where(Customer.whatsapp_id == whatsapp_id)
            .order_by(ChatSession.id.desc())
        )
    assert chat_id is not None
    return chat_id


async def chat_row(database: Database, chat_id: int) -> ChatSession:
    async with database.read_sessions() as session:
        chat = await session.get(ChatSession, chat_id)
    assert chat is not None
    return chat


async def test_new_conversations_go_to_the_free_online_agent_with_the_fewest(database: Database) -> None:
    await given_staff_and_customers(database)
    first = await customer_writes(database, "4915100000001", "Can I move my appointment?", NOW)
    second = await customer_writes(database, "4915100000002", "Hello?", NOW + timedelta(minutes=1))
    third = await customer_writes(database, "4915100000003", "Hi", NOW + timedelta(minutes=2))
    assignees = [(await chat_row(database, chat)).assigned_staff_id for chat in (first, second, third)]
    assert assignees == [1, 2, 1]  # never the agent who is away, never a viewer; ties to the lower id
    async with database.read_sessions() as session:
        audited = list(await session.scalars(select(AuditLog.target).where(AuditLog.action == "chat.assign")))
    assert sorted(audited) == sorted(f"chat:{c}" for c in (first, second, third))


async def test_a_customer_of_a_clinic_goes_to_that_clinics_agent_and_can_be_handed_to_a_team(
    database: Database,
) -> None:
    await given_staff_and_customers(database)
    async with database.sessions() as session:
        session.add_all(
            [
                Location(id=1, code="BER", name="Berlin Mitte", country="DE", timezone="Europe/Berlin"),
                Location(id=2, code="LON", name="London Camden", country="GB", timezone="Europe/London"),
            ]
        )
        await session.flush()
        for staff_id, location in ((1, 1), (2, 2)):
            staff = await session.get(StaffUser, staff_id)
            assert staff is not None
            staff.location_id = location
        for customer_id in (1, 2, 3):
            customer = await session.get(Customer, customer_id)
            assert customer is not None
            customer.home_location_id = 2  # all London customers
        await session.commit()
    chats = [
        await customer_writes(database, f"491510000000{n}", "Hello", NOW + timedelta(minutes=n))
        for n in (1, 2, 3)
    ]
    # London's agent takes them all while he has room, although Lena in Berlin has fewer.
    assert [(await chat_row(database, chat)).assigned_staff_id for chat in chats] == [2, 2, 2]
    async with database.read_sessions() as session:
        detail = await session.scalar(select(AuditLog.detail).where(AuditLog.action == "chat.assign"))
    assert detail == {"staff_id": 2, "automatic": True, "team": "LON", "in_team": True}

    units = UnitsOfWork(database, "UTC")
    handed = await assign_chat(
        units.desk(), chats[0], DeskActor(2, "jonas@x.example", "slack"), to="Berlin Mitte", now=NOW
    )
    assert handed.assigned_staff_id == 1


async def test_customers_writing_at_the_same_moment_never_push_an_agent_past_capacity(
    database: Database,
) -> None:
    await given_staff_and_customers(database)
    async with database.sessions() as session:
        for staff in await session.scalars(select(StaffUser)):
            staff.chat_capacity = 1
            staff.availability = "online" if staff.id == 1 else "away"
        await session.commit()
    chats = await asyncio.gather(
        *(customer_writes(database, f"491510000000{n}", "Hello", NOW) for n in (1, 2, 3))
    )
    assignees = sorted([(await chat_row(database, chat)).assigned_staff_id or 0 for chat in chats])
    assert assignees == [0, 0, 1]  # Lena takes one; two wait unassigned


async def test_an_agent_going_away_takes_no_new_conversations(database: Database) -> None:
    await given_staff_and_customers(database)
    units = UnitsOfWork(database, "UTC")
    await set_availability(units.desk(), DeskActor(1, "lena@x.example", "slack"), Availability.AWAY)
    await set_availability(units.desk(), DeskActor(2, "jonas@x.example", "slack"), Availability.AWAY)
    chat = await customer_writes(database, "4915100000001", "Anyone there?", NOW)
    assert (await chat_row(database, chat)).assigned_staff_id is None  # waits in the unassigned queue


async def test_the_customer_writing_wakes_a_snoozed_conversation_and_reopens_a_resolved_one(
    database: Database,
) -> None:
    await given_staff_and_customers(database)
    units, lena = UnitsOfWork(database, "UTC"), DeskActor(1, "lena@x.example", "web")
    chat = await customer_writes(database, "4915100000001", "Question", NOW)
    await snooze_chat(units.desk(), chat, lena, until=NOW + timedelta(days=2), now=NOW)
    assert (await chat_row(database, chat)).status == ChatStatus.SNOOZED.value
    assert await customer_writes(database, "4915100000001", "Still there?", NOW + timedelta(hours=1)) == chat
    woke = await chat_row(database, chat)
    assert (woke.status, woke.snoozed_until) == (ChatStatus.OPEN.value, None)

    await resolve_chat(units.desk(), chat, lena, now=NOW + timedelta(hours=2))
    resolved = await chat_row(database, chat)
    assert (resolved.status, resolved.resolved_by_staff_id) == (ChatStatus.CLOSED.value, 1)
    assert await customer_writes(database, "4915100000001", "One more thing", NOW + timedelta(days=1)) == chat
    reopened = await chat_row(database, chat)
    assert (reopened.status, reopened.closed_at, reopened.assigned_staff_id) == (
        ChatStatus.OPEN.value,
        None,
        1,
    )

    await resolve_chat(units.desk(), chat, lena, now=NOW + timedelta(days=1, hours=1))
    later = await customer_writes(database, "4915100000001", "Back again", NOW + timedelta(days=9))
    assert later != chat  # more than a week after resolving: a new conversation
    async with database.read_sessions() as session:
        notes = list(
            await session.scalars(
                select(ChatMessage.body).where(ChatMessage.session_id == chat, ChatMessage.author == "system")
            )
        )
    assert notes == [
        "Snoozed until 4 Mar 2026, 10:00 UTC.",
        "Resolved.",
        "Reopened: the customer wrote again.",
        "Resolved.",
    ]


async def test_the_worker_wakes_a_snoozed_conversation_when_its_time_comes(database: Database) -> None:
    await given_staff_and_customers(database)
    units, lena = UnitsOfWork(database, "UTC"), DeskActor(1, "lena@x.example", "web")
    chat = await customer_writes(database, "4915100000001", "Question", NOW)
    await snooze_chat(units.desk(), chat, lena, until=NOW + timedelta(hours=1), now=NOW)
    assert await wake_snoozed_chats(units.desk(), NOW + timedelta(minutes=30)) == 0
    assert await wake_snoozed_chats(units.desk(), NOW + timedelta(hours=1, seconds=1)) == 1
    assert (await chat_row(database, chat)).status == ChatStatus.OPEN.value
