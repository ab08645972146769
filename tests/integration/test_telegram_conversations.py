"""Live chat in the staff bot's Telegram chats, on a real database, against the sandbox's Telegram Bot API.

A customer's message is forwarded to the agent holding the conversation (once); the agent's reply to it goes
to the customer once however often Telegram redelivers the update; `note:` stays inside; the buttons run the
desk's moves; a stranger is refused; a reply to any other message is an ordinary command.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiogram.types import Message
from sqlalchemy import func, select, update

from api.sandbox import RunningSandbox, SandboxConfig, run_sandbox
from bot.command_runner import StaffCommandRunner
from bot.telegram_staff.handlers import staff_file_of
from bot.telegram_staff.staff_bot import build_staff_bot, build_telegram_staff
from domain.conversations.model import CustomerMessage
from domain.conversations.use_cases import InboundPolicy, handle_customer_message
from domain.delivery.ports import InboundMessage
from domain.vocabulary import Channel
from providers.media import ProviderMedia
from storage.database import Database
from storage.inbox import ConversationUnitOfWork
from storage.models import (
    ChatAttachment,
    ChatMessage,
    ChatSession,
    ChatTelegramPost,
    Customer,
    CustomerCommunication,
    StaffUser,
)
from storage.units import UnitsOfWork
from switchboard.chat_threads import NOT_STAFF, TelegramConversationDesk
from switchboard.settings import Settings
from switchboard.wiring import build_container
from tests.conftest import FreshDatabases

LENA = 5001
JONAS = 5002
STRANGER = 9009


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    config = dataclasses.replace(SandboxConfig(port=0, smtp_port=0, send_status_webhooks=False))
    async with run_sandbox(config) as running:
        yield running


@pytest.fixture
async def settings(sandbox: RunningSandbox, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        telegram_base_url=f"{sandbox.base_url}",
        telegram_bot_token=sandbox.state.config.telegram_bot_token,
        telegram_staff_chats=True,
        public_url="https://switchboard.example",
    )


@pytest.fixture
async def desk(database: Database, settings: Settings) -> AsyncIterator[TelegramConversationDesk]:
    async with database.sessions() as session:
        session.add_all(
            [
                StaffUser(id=1, email="lena@x.example", name="Lena", role="agent", availability="online",
                          telegram_user_id=LENA),
                StaffUser(id=2, email="jonas@x.example", name="Jonas", role="agent", availability="online",
                          telegram_user_id=JONAS),
                Customer(id=1, name="Ada Lovelace", whatsapp_id="4915100000001", phone_e164="+4915100000001"),
            ]
        )  # fmt: skip
        await session.commit()
    bot = build_staff_bot(settings)
    yield TelegramConversationDesk(
        settings, database, UnitsOfWork(database, "UTC"), bot, lambda: datetime.now(UTC)
    )
    await bot.session.close()


async def customer_writes(desk: TelegramConversationDesk, text: str, n: int = 1) -> int:
    now = datetime.now(UTC)
    message = InboundMessage(
        "whatsapp_cloud", Channel.WHATSAPP, f"wamid.t.{n}", "4915100000001", "us", text, now
    )
    async with ConversationUnitOfWork(desk.units.general()) as uow:
        await handle_customer_message(uow, CustomerMessage(message), InboundPolicy("Northwind"), now)
        await uow.commit()
    async with desk.database.read_sessions() as session:
        chat_id = await session.scalar(select(ChatSession.id).order_by(ChatSession.id.desc()))
    assert chat_id is not None
    return chat_id


def sent_to(sandbox: RunningSandbox, chat: int) -> list[dict[str, Any]]:
    return [m for (to, _), m in sorted(sandbox.state.telegram_sent.items()) if to == chat]


async def outbound(database: Database) -> list[CustomerCommunication]:
    async with database.read_sessions() as session:
        return list(
            await session.scalars(
                select(CustomerCommunication).where(CustomerCommunication.direction == "outbound")
            )
        )


async def test_a_customer_message_reaches_the_agent_holding_it_once_and_their_reply_the_customer_once(
    desk: TelegramConversationDesk, sandbox: RunningSandbox
) -> None:
    chat_id = await customer_writes(desk, "Is there parking at the clinic?")
    assert (await desk.forward()).forwarded == 1
    assert (await desk.forward()).forwarded == 0
    async with desk.database.read_sessions() as session:
        holder = await session.scalar(select(ChatSession.assigned_staff_id).where(ChatSession.id == chat_id))
    agent, other = (LENA, JONAS) if holder == 1 else (JONAS, LENA)
    [forwarded] = sent_to(sandbox, agent)
    assert sent_to(sandbox, other) == []  # only the holder hears of it
    assert (
        f"Conversation {chat_id}" in forwarded["text"]
        and "Is there parking at the clinic?" in forwarded["text"]
    )
    assert "+4915100000001" not in forwarded["text"]  # masked by default
    buttons = [b["callback_data"] for row in forwarded["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == [f"lc:assign:{chat_id}", f"lc:resolve:{chat_id}", f"lc:snooze:{chat_id}"]

    message_id = forwarded["message_id"]
    said = await desk.answer(agent, message_id, 700, "Yes, behind the building.", agent)
    assert said is not None and said.kind == "sent"
    again = await desk.answer(
        agent, message_id, 700, "Yes, behind the building.", agent
    )  # redelivered update
    assert again is not None and again.kind == "duplicate"
    [reply] = await outbound(desk.database)
    assert reply.channel == "whatsapp" and reply.body == "Yes, behind the building."

    note = await desk.answer(agent, message_id, 701, "note: asked twice already", agent)
    assert note is not None and note.kind == "note"
    assert len(await outbound(desk.database)) == 1
    stranger = await desk.answer(agent, message_id, 702, "hi", STRANGER)
    assert stranger is not None and stranger.say == NOT_STAFF
    assert (
        await desk.answer(agent, 99999, 703, "sales this week", agent) is None
    )  # not a conversation message

    # What the agent wrote in Telegram is not forwarded back to them (the conversation is theirs: nobody
    # else hears of it either).
    await desk.forward()
    assert len(sent_to(sandbox, agent)) == 1
    async with desk.database.read_sessions() as session:
        posts = await session.scalar(select(func.count()).select_from(ChatTelegramPost))
    assert posts == 1


async def test_what_happened_to_a_reply_written_in_telegram_is_told_there_once_per_outcome(
    desk: TelegramConversationDesk, sandbox: RunningSandbox
) -> None:
    chat_id = await customer_writes(desk, "Do you take walk-ins?")
    await desk.forward()
    async with desk.database.read_sessions() as session:
        holder = await session.scalar(select(ChatSession.assigned_staff_id).where(ChatSession.id == chat_id))
    agent = LENA if holder == 1 else JONAS
    [forwarded] = sent_to(sandbox, agent)
    said = await desk.answer(agent, forwarded["message_id"], 800, "Yes, until 4 pm.", agent)
    assert said is not None and said.kind == "sent"
    note = await desk.answer(agent, forwarded["message_id"], 801, "note: regular patient", agent)
    assert note is not None and note.kind == "note"
    assert (await desk.forward()).echoes == 0  # nothing happened to it yet

    async def provider_says(status: str, **details: str) -> list[str]:
        async with desk.database.sessions() as session:
            await session.execute(
                update(CustomerCommunication)
                .where(CustomerCommunication.direction == "outbound")
                .values(status=status, **details)
            )
            await session.commit()
        told = await desk.forward()
        assert (await desk.forward()).echoes == 0  # once per outcome
        return [m["text"] for m in sent_to(sandbox, agent)[-told.echoes :]] if told.echoes else []

    assert await provider_says("delivered") == ["✅ Delivered by WhatsApp."]
    assert await provider_says("read") == ["👀 Read by the customer."]
    [failed] = await provider_says("failed", error_code="131047", status_reason="Re-engagement message")
    assert failed.startswith("⚠️ Not delivered by WhatsApp: outside WhatsApp's 24-hour window")
    assert "send whatsapp to #1 template chat_follow_up" in failed
    # Each went to the agent's own chat with the bot; the note has none. Each is the conversation's post, so
    # replying to one answers the customer (and erasing the customer overwrites it).
    echoes = [m for m in sent_to(sandbox, agent) if m["text"][0] in "✅👀⚠"]
    assert len(echoes) == 3
    again = await desk.answer(agent, echoes[-1]["message_id"], 802, "Please call us.", agent)
    assert again is not None and again.kind == "sent" and again.chat_id == chat_id

    # Telegram's flood control refuses the first: that outcome and the next wait for the next pass, together.
    async with desk.database.sessions() as session:
        await session.execute(update(CustomerCommunication).values(status="delivered"))
        await session.commit()
    sandbox.state.force_faults("telegram", "429")
    held = await desk.forward()
    assert held.echoes == 0 and "Flood control" in held.errors[0], held
    told = await desk.forward()
    assert told.echoes == 2, told
    assert [m["text"] for m in sent_to(sandbox, agent)[-2:]] == ["✅ Delivered by WhatsApp."] * 2

    # An agent who blocked the bot is not written to again for that outcome.
    sandbox.state.opt_out(str(agent))
    async with desk.database.sessions() as session:
        await session.execute(update(CustomerCommunication).values(status="read"))
        await session.commit()
    blocked = await desk.forward()
    assert blocked.echoes == 0 and "blocked" in blocked.errors[0]
    sandbox.state.opt_in(str(agent))
    assert (await desk.forward()).echoes == 0


async def test_an_unassigned_conversation_goes_to_every_online_agent_and_a_reply_through_the_bot_answers(
    desk: TelegramConversationDesk, sandbox: RunningSandbox, settings: Settings, database: Database
) -> None:
    async with database.sessions() as session:
        for staff in await session.scalars(select(StaffUser)):
            staff.chat_capacity = 0  # everyone is full: the conversation waits unassigned
        await session.commit()
    chat_id = await customer_writes(desk, "Hello, anyone there?")
    await desk.forward()
    lena_copy, jonas_copy = sent_to(sandbox, LENA)[-1], sent_to(sandbox, JONAS)[-1]
    assert f"Conversation {chat_id}" in lena_copy["text"] and "unassigned" in jonas_copy["text"]

    # Through the real staff bot: Jonas replies to his copy, then presses Assign to me.
    container = build_container(settings)
    try:
        staff_bot = build_telegram_staff(settings, StaffCommandRunner(container.command_context()), desk)
        person = {"id": JONAS, "is_bot": False, "first_name": "Jonas"}
        chat = {"id": JONAS, "type": "private"}
        await staff_bot.handle(
            {
                "update_id": 1,
                "message": {
                    "message_id": 800,
                    "from": person,
                    "chat": chat,
                    "date": 1800000000,
                    "text": "Yes! How can I help?",
                    "reply_to_message": jonas_copy,
                },
            }
        )
        await staff_bot.handle(
            {
                "update_id": 2,
                "callback_query": {
                    "id": "42",
                    "from": person,
                    "chat_instance": "1",
                    "message": jonas_copy,
                    "data": f"lc:assign:{chat_id}",
                },
            }
        )
        await staff_bot.close()
    finally:
        await container.close()
    [reply] = await outbound(database)
    assert reply.body == "Yes! How can I help?"
    answers = [m["text"] for m in sent_to(sandbox, JONAS)]
    assert "✓ Sent to the customer." in answers
    # Jonas took it by answering; Lena hears of his reply and of it being his, so she does not answer too.
    await desk.forward()
    told_lena = [m["text"] for m in sent_to(sandbox, LENA)]
    assert any("Jonas replied: Yes! How can I help?" in text for text in told_lena)
    assert any("Jonas took the conversation by answering it." in text for text in told_lena)
    assert not any("replied: Yes! How can I help?" in m["text"] for m in sent_to(sandbox, JONAS))
    async with database.read_sessions() as session:
        holder = await session.scalar(select(ChatSession.assigned_staff_id).where(ChatSession.id == chat_id))
        turns = list(await session.scalars(select(ChatMessage.body).where(ChatMessage.author == "system")))
    assert holder == 2 and "Assigned to Jonas." in turns


async def test_an_agent_handed_a_conversation_they_never_saw_gets_what_the_customer_said_first(
    desk: TelegramConversationDesk, sandbox: RunningSandbox, database: Database
) -> None:
    """The walk: Lena took over a conversation Sophie held, and her Telegram got only "Assigned to Lena", not
    the patient's "Hallo, ich möchte meinen Termin am Donnerstag verschieben"."""
    chat_id = await customer_writes(desk, "Hallo, ich möchte meinen Termin am Donnerstag verschieben")
    await desk.forward()
    async with database.read_sessions() as session:
        holder = await session.scalar(select(ChatSession.assigned_staff_id).where(ChatSession.id == chat_id))
    first, other = (LENA, JONAS) if holder == 1 else (JONAS, LENA)
    assert sent_to(sandbox, other) == []
    # The other agent is given it (from the dashboard, say): the hand-over's note and, before it, the patient.
    async with database.sessions() as session:
        chat = await session.get(ChatSession, chat_id)
        assert chat is not None
        chat.assigned_staff_id = 2 if holder == 1 else 1
        session.add(ChatMessage(session_id=chat_id, author="system", body="Assigned to the other agent.",
                                created_at=datetime.now(UTC)))  # fmt: skip
        await session.commit()
    await desk.forward()
    told = [m["text"] for m in sent_to(sandbox, other)]
    assert len(told) == 2, told
    assert "Termin am Donnerstag verschieben" in told[0] and "Assigned to the other agent." in told[1]
    # Told once: what comes next is only the news.
    await customer_writes(desk, "Freitag ginge auch", n=2)
    await desk.forward()
    later = [m["text"] for m in sent_to(sandbox, other)][2:]
    assert len(later) == 1 and "Freitag ginge auch" in later[0]
    assert len(sent_to(sandbox, first)) >= 1


#: A one-page PDF, as the attachment rules recognise one by its first bytes.
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def agent_sends_file(
    sandbox: RunningSandbox, agent: int, replied_to: int, name: str, content: bytes, kind: str
) -> Message:
    """The agent replies to the forwarded message with a document in the sandbox's Telegram."""
    body = {
        "chat_id": agent,
        "message_id": replied_to,
        "text": "Our price list",
        "file_base64": base64.b64encode(content).decode(),
        "file_name": name,
        "file_type": kind,
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sandbox.base_url}/_sandbox/customer/telegram", json=body) as answer,
    ):
        assert answer.status == 202, await answer.text()
        update = (await answer.json())["update"]
    return Message.model_validate(update["message"])


async def test_an_agent_replies_with_a_document_and_the_customer_gets_it_once(
    desk: TelegramConversationDesk, sandbox: RunningSandbox
) -> None:
    media = ProviderMedia(desk.settings)
    desk = dataclasses.replace(desk, files=media)
    try:
        chat_id = await customer_writes(desk, "Can I have the prices?")
        await desk.forward()
        async with desk.database.read_sessions() as session:
            holder = await session.scalar(
                select(ChatSession.assigned_staff_id).where(ChatSession.id == chat_id)
            )
        agent = LENA if holder == 1 else JONAS
        [forwarded] = sent_to(sandbox, agent)
        sent = await agent_sends_file(
            sandbox, agent, forwarded["message_id"], "prices.pdf", PDF, "application/pdf"
        )
        shared = staff_file_of(sent)
        assert shared is not None and shared.name == "prices.pdf"
        for _ in range(2):  # Telegram redelivers the update: sent and kept once
            said = await desk.answer(
                agent, forwarded["message_id"], sent.message_id, sent.caption or "", agent, shared
            )
            assert said is not None and said.kind in ("sent", "duplicate")
        [reply] = await outbound(desk.database)
        assert reply.body.startswith("Our price list") and "https://switchboard.example/media/" in reply.body
        async with desk.database.read_sessions() as session:
            kept = (await session.execute(select(ChatAttachment.filename, ChatAttachment.content))).all()
        assert [(name, content) for name, content in kept] == [("prices.pdf", PDF)]

        program = await agent_sends_file(
            sandbox, agent, forwarded["message_id"], "prices.png", b"MZ\x90\x00" + bytes(200), "image/png"
        )
        refused = await desk.answer(
            agent, forwarded["message_id"], program.message_id, "", agent, staff_file_of(program)
        )
        assert refused is not None and refused.kind == "refused" and refused.say is not None
        assert refused.say.startswith("Not sent:") and "was not kept" in refused.say
        without = dataclasses.replace(desk, files=None)
        unsent = await without.answer(agent, forwarded["message_id"], 9001, "", agent, shared)
        assert unsent is not None and unsent.say is not None and "nothing was sent" in unsent.say
        assert len(await outbound(desk.database)) == 1
    finally:
        await media.close()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_replies_written_in_telegram_before_the_upgrade_count_as_told(
    engine: str, fresh_databases: FreshDatabases
) -> None:
    """Migration 0022 marks the replies already written in Telegram as told, so the first pass after the
    upgrade sends agents no old outcomes; going back and up again keeps every conversation turn."""
    import asyncio

    from storage import migrate
    from storage.telegram_desk import SqlTelegramPosts

    url = fresh_databases.url(engine)
    now = datetime.now(UTC)

    async def fill() -> None:
        database = Database.connect(url)
        try:
            async with database.sessions() as session:
                session.add(Customer(id=1, name="Ada", phone_e164="+4915100000001"))
                await session.flush()
                session.add(ChatSession(id=1, customer_id=1, channel="sms", started_at=now))
                await session.flush()
                for n, ref in enumerate(("telegram:5001:700", "slack:C1:1.2", None), start=1):
                    session.add(
                        CustomerCommunication(
                            id=n,
                            channel="sms",
                            provider="twilio",
                            direction="outbound",
                            source="chat",
                            category="conversational",
                            idempotency_key=f"chat:{n}",
                            to_address="+4915100000001",
                            body=f"Reply {n}",
                            status="delivered",
                            created_at=now,
                        )
                    )
                    await session.flush()
                    session.add(
                        ChatMessage(
                            session_id=1,
                            author="staff",
                            body=f"Reply {n}",
                            communication_id=n,
                            external_ref=ref,
                            created_at=now,
                        )
                    )
                await session.commit()
        finally:
            await database.dispose()

    async def told() -> tuple[list[Any], list[int]]:
        database = Database.connect(url)
        try:
            async with database.sessions() as session:
                marks = (
                    await session.execute(
                        select(ChatMessage.external_ref, ChatMessage.telegram_echoed_status).order_by(
                            ChatMessage.id
                        )
                    )
                ).all()
                due = await SqlTelegramPosts(session).pending_echo_ids(now - timedelta(days=2), 10)
            return list(marks), due
        finally:
            await database.dispose()

    asyncio.run(fill())
    asyncio.run(migrate.downgrade(url, "0021"))
    asyncio.run(migrate.upgrade(url))
    marks, due = asyncio.run(told())
    assert marks == [("telegram:5001:700", "delivered"), ("slack:C1:1.2", None), (None, None)]
    assert due == []
