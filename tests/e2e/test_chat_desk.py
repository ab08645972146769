"""The live-chat desk from the staff chat: a customer's WhatsApp message lands in an agent's queue, and
agents list, take, snooze, resolve and reopen conversations and go away and back, on a seeded database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.commands.chats import LIST_LIMIT
from bot.commands.context import CommandContext
from bot.console import ask, render_reply
from domain.conversations.model import CustomerMessage
from domain.conversations.use_cases import InboundPolicy, handle_customer_message
from domain.delivery.ports import InboundMessage
from domain.vocabulary import Channel
from storage.database import Database
from storage.inbox import ConversationUnitOfWork
from storage.models import AuditLog, ChatSession, Customer, StaffUser
from storage.seeding import SeedPlan, seed_database
from storage.units import UnitsOfWork
from switchboard.settings import Settings

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
PLAN = SeedPlan(customers=30, days=20, seed=5, end_date=date(2026, 11, 23))
AGENT = "lena.hoffmann@northwind.example"
VIEWER = "finance@northwind.example"


@pytest.fixture
async def ctx(database: Database) -> CommandContext:
    await seed_database(database, PLAN)
    return CommandContext(Settings(database_url=database.url), database, clock=lambda: NOW)


async def whatsapp_customer_writes(database: Database, text: str, at: datetime) -> tuple[int, int | None]:
    """A seeded customer with WhatsApp writes; the conversation's id and who it was assigned to."""
    async with database.read_sessions() as session:
        customer_id, whatsapp = (
            await session.execute(
                select(Customer.id, Customer.whatsapp_id).where(Customer.whatsapp_id.is_not(None)).limit(1)
            )
        ).one()
    message = InboundMessage(
        "whatsapp_cloud", Channel.WHATSAPP, f"wamid.{at.timestamp()}", whatsapp, "us", text, at
    )
    async with ConversationUnitOfWork(UnitsOfWork(database, "UTC").general()) as uow:
        await handle_customer_message(uow, CustomerMessage(message), InboundPolicy("Northwind"), at)
        await uow.commit()
    async with database.read_sessions() as session:
        chat = (
            await session.execute(
                select(ChatSession.id, ChatSession.assigned_staff_id)
                .where(ChatSession.customer_id == customer_id, ChatSession.channel == "whatsapp")
                .order_by(ChatSession.id.desc())
            )
        ).first()
    assert chat is not None
    return chat[0], chat[1]


async def say(ctx: CommandContext, who: str, text: str) -> tuple[str, str]:
    reply = await ask(ctx, text, as_email=who)
    shown = render_reply(reply)
    assert "Traceback" not in shown
    return reply.kind, shown


async def test_the_desk_from_chat(ctx: CommandContext) -> None:
    database = ctx.database
    chat_id, assignee = await whatsapp_customer_writes(
        database, "Can I come at 3 instead?", NOW - timedelta(minutes=5)
    )
    async with database.read_sessions() as session:
        online_agents = set(
            await session.scalars(select(StaffUser.id).where(StaffUser.availability == "online"))
        )
    assert assignee in online_agents  # assigned at once to an agent who is at work

    kind, shown = await say(ctx, AGENT, "chat list open")
    assert kind == "answer" and str(chat_id) in shown and "WhatsApp" in shown

    kind, shown = await say(ctx, AGENT, f"chat assign {chat_id} to me")
    assert "Lena Hoffmann" in shown
    kind, shown = await say(ctx, AGENT, "chat list")  # "mine" by default
    assert str(chat_id) in shown

    kind, shown = await say(ctx, AGENT, f"chat snooze {chat_id} for 2h")
    assert "snoozed until 24 Nov" in shown, shown
    kind, shown = await say(ctx, AGENT, "chat list snoozed")
    assert str(chat_id) in shown and "snoozed until" in shown

    kind, shown = await say(ctx, AGENT, f"chat resolve {chat_id}")
    assert "resolved" in shown
    kind, shown = await say(ctx, AGENT, f"chat resolve {chat_id}")
    assert kind == "error" and "already resolved" in shown
    kind, shown = await say(ctx, AGENT, f"chat reopen {chat_id}")
    assert "open again" in shown

    kind, shown = await say(ctx, VIEWER, f"chat resolve {chat_id}")
    assert kind == "denied" and "needs the agent role" in shown
    kind, shown = await say(ctx, AGENT, "chat snooze 1 for ever")
    assert kind == "usage" or "Say for how long" in shown
    kind, shown = await say(ctx, AGENT, "chat resolve 999999")
    assert kind == "error" and "no conversation 999999" in shown

    kind, shown = await say(ctx, AGENT, "away")
    assert "You are away" in shown
    kind, shown = await say(ctx, AGENT, "back")
    assert "Welcome back" in shown

    async with database.read_sessions() as session:
        actions = list(
            await session.scalars(
                select(AuditLog.action)
                .where(
                    AuditLog.actor == AGENT, AuditLog.action.like("chat.%") | AuditLog.action.like("staff.%")
                )
                .order_by(AuditLog.id)
            )
        )
    assert actions == [
        "chat.assign",
        "chat.snooze",
        "chat.resolve",
        "chat.reopen",
        "staff.availability",
        "staff.availability",
    ]


async def test_a_kpi_question_about_chats_is_still_a_question(ctx: CommandContext) -> None:
    kind, shown = await say(ctx, AGENT, "chat satisfaction last 30 days")
    assert kind == "answer" and "Conversations" not in shown


async def test_how_many_chats_are_open_is_answered_with_the_queues_number_beyond_one_page(
    ctx: CommandContext,
) -> None:
    """More open conversations than a list shows: the reply says how many there are, recounted, and which are
    shown; not the page's length, nor a figure of chat messages."""
    async with ctx.database.sessions() as session:
        customers = list(await session.scalars(select(Customer.id).limit(30)))
        session.add_all(
            ChatSession(customer_id=customer_id, channel="sms", status="open", last_message_at=NOW)
            for customer_id in customers
        )
        await session.commit()
    async with ctx.database.read_sessions() as session:
        live = await session.scalar(
            select(func.count()).select_from(ChatSession).where(ChatSession.status.in_(("open", "pending")))
        )
    assert live is not None and live > LIST_LIMIT
    kind, shown = await say(ctx, AGENT, "how many chats are open")
    assert kind == "answer" and "Conversations: open" in shown, shown
    assert (
        f"{live} conversations in “open”; the {LIST_LIMIT} with the oldest last message are shown (open, or "
        "waiting for the customer's answer)." in shown
    )
    listed = await ask(ctx, "chat list open", as_email=AGENT)
    assert listed.table is not None and len(listed.table.rows) == LIST_LIMIT
