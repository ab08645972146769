"""Live chat in Slack threads on a real database, against the sandbox's Slack stand-in over HTTP.

A customer's message opens a thread in the agents' channel; an agent's thread reply goes to the customer
once, however often Slack retries; `note:` stays internal; strangers, unknown threads, edits and deletes
get their answers; delivery outcomes are echoed in the thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select, update

from api.sandbox import RunningSandbox, SandboxConfig, run_sandbox
from api.sandbox.slack_people import SlackChannelSpec, northwind_slack_staff
from api.sandbox.slack_workspace import SlackFile
from domain.conversations.model import CustomerMessage
from domain.conversations.slack_threads import ThreadFile, ThreadMessage
from domain.conversations.use_cases import DeskActor, InboundPolicy, assign_chat, handle_customer_message
from domain.delivery.ports import InboundMessage
from domain.vocabulary import Channel
from providers.media import ProviderMedia
from storage.database import Database
from storage.inbox import ConversationUnitOfWork
from storage.models import (
    ChatAttachment,
    ChatMessage,
    ChatSession,
    ChatSlackThread,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    CustomerConsent,
    Location,
    StaffUser,
)
from storage.units import UnitsOfWork
from switchboard.chat_threads import NOT_STAFF, UNKNOWN_THREAD, SlackThreadDesk
from switchboard.settings import Settings

LIVE_CHAT = "C0LIVECHAT"
TEAM = "T0NORTHWIND"
LENA = "U0AGENT01"


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    config = dataclasses.replace(
        SandboxConfig(port=0, smtp_port=0, send_status_webhooks=False),
        slack_channels=(
            SlackChannelSpec(LIVE_CHAT, "live-chat", "Customer conversations"),
            SlackChannelSpec("C0BERLIN", "berlin-chat", "Berlin Mitte's customers"),
        ),
        slack_people=northwind_slack_staff(),
    )
    async with run_sandbox(config) as running:
        yield running


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def desk(database: Database, sandbox: RunningSandbox) -> SlackThreadDesk:
    async with database.sessions() as session:
        session.add_all(
            [
                StaffUser(
                    id=1,
                    email="lena@x.example",
                    name="Lena Hoffmann",
                    role="agent",
                    availability="online",
                    slack_team_id=TEAM,
                    slack_user_id=LENA,
                ),
                StaffUser(
                    id=2,
                    email="viewer@x.example",
                    name="Finance Viewer",
                    role="viewer",
                    slack_team_id=TEAM,
                    slack_user_id="U0VIEWER1",
                ),
                Customer(
                    id=1,
                    name="Ada Lovelace",
                    whatsapp_id="4915100000001",
                    phone_e164="+4915100000001",
                    email="ada@example.com",
                ),
            ]
        )
        await session.commit()
    settings = Settings(
        slack_chat_channel=LIVE_CHAT,
        slack_base_url=f"{sandbox.base_url}/slack/api/",
        public_url="https://switchboard.example",
    )
    client = AsyncWebClient(
        token=sandbox.state.config.slack_bot_token, base_url=f"{sandbox.base_url}/slack/api/"
    )
    return SlackThreadDesk(settings, database, UnitsOfWork(database, "UTC"), client, Clock())


async def customer_writes(desk: SlackThreadDesk, text: str, n: int = 1) -> int:
    now = desk.clock()
    message = InboundMessage(
        "whatsapp_cloud", Channel.WHATSAPP, f"wamid.test.{n}", "4915100000001", "us", text, now
    )
    async with ConversationUnitOfWork(desk.units.general()) as uow:
        await handle_customer_message(uow, CustomerMessage(message), InboundPolicy("Northwind"), now)
        await uow.commit()
    async with desk.database.read_sessions() as session:
        chat_id = await session.scalar(select(ChatSession.id).order_by(ChatSession.id.desc()))
    assert chat_id is not None
    return chat_id


async def messages(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    url = f"{sandbox.base_url}/_sandbox/slack/channels/{LIVE_CHAT}/messages"
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        found: list[dict[str, Any]] = (await answer.json())["messages"]
    return found


async def thread_of(desk: SlackThreadDesk, chat_id: int) -> ChatSlackThread:
    async with desk.database.read_sessions() as session:
        thread = await session.get(ChatSlackThread, chat_id)
    assert thread is not None and thread.thread_ts is not None
    return thread


def reply(thread: ChatSlackThread, text: str, ts: str, user: str = LENA) -> ThreadMessage:
    assert thread.thread_ts is not None
    return ThreadMessage(thread.channel_id, thread.thread_ts, ts, text, user, root_is_ours=True, team_id=TEAM)


async def provider_reports(database: Database, which: Any, **outcome: str) -> None:
    """The provider's report on the messages `which` selects: their status (and its code and reason)."""
    async with database.sessions() as session:
        await session.execute(update(CustomerCommunication).where(which).values(**outcome))
        await session.commit()


async def count(database: Database, model: Any, *where: Any) -> int:
    async with database.read_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_a_customer_message_opens_a_thread_once_and_the_root_follows_the_assignment(
    desk: SlackThreadDesk, sandbox: RunningSandbox
) -> None:
    chat_id = await customer_writes(desk, "Can I move my appointment to Friday?")
    first = await desk.mirror()
    assert (first.roots, first.posted, first.errors) == (1, 1, [])
    again = await desk.mirror()
    assert (again.roots, again.posted) == (0, 0)

    root, turn = await messages(sandbox)
    assert f"Conversation {chat_id} on WhatsApp" in root["blocks"][0]["text"]["text"]
    # Contact details are masked by default; the name is shown; the full record is one link away.
    shown = root["blocks"][0]["text"]["text"]
    assert "Ada Lovelace" in shown and "+4915100000001" not in shown and "ada@example.com" not in shown
    assert f"https://switchboard.example/communication/chat/{chat_id}" in shown
    assert [b["value"] for b in root["blocks"][1]["elements"]][:2] == [
        f"chat assign {chat_id} to me",
        f"chat resolve {chat_id}",
    ]
    assert (
        turn["thread_ts"] == root["ts"]
        and turn["text"] == "*Ada Lovelace*: Can I move my appointment to Friday?"
    )

    # The customer was auto-assigned to the only online agent; a manual assignment shows on the root.
    actor = DeskActor(1, "lena@x.example", "web")
    await assign_chat(desk.units.desk(), chat_id, actor, to="me", now=desk.clock())
    await desk.mirror()
    root, *thread = await messages(sandbox)
    assert "assigned to Lena Hoffmann" in root["blocks"][0]["text"]["text"]
    assert thread[-1]["text"] == "_Assigned to Lena Hoffmann._"


async def test_an_agents_thread_reply_reaches_the_customer_once_however_often_slack_retries(
    desk: SlackThreadDesk, sandbox: RunningSandbox
) -> None:
    chat_id = await customer_writes(desk, "Is the clinic open on Saturday?")
    await desk.mirror()
    thread = await thread_of(desk, chat_id)

    said = reply(
        thread, "Yes, 9&amp;13 &lt;3 <https://northwind.example/hours|our hours>", "1800000000.000100"
    )
    assert (await desk.answer(said)).kind == "sent"
    assert (await desk.answer(said)).kind == "duplicate"  # Slack's retry of the same event

    async with desk.database.read_sessions() as session:
        sent = list(
            await session.scalars(
                select(CustomerCommunication).where(CustomerCommunication.direction == "outbound")
            )
        )
        turns = list(await session.scalars(select(ChatMessage).where(ChatMessage.author == "staff")))
    assert len(sent) == 1 and sent[0].channel == "whatsapp"
    assert sent[0].body == "Yes, 9&13 <3 our hours (https://northwind.example/hours)"
    assert len(turns) == 1 and turns[0].external_ref == f"slack:{LIVE_CHAT}:1800000000.000100"
    assert turns[0].mirrored_at is not None  # written in Slack: never posted there again
    assert (await desk.mirror()).posted == 0

    # The delivery outcome is said in the thread, once.
    await provider_reports(desk.database, CustomerCommunication.id == sent[0].id, status="delivered")
    # Slack is over its rate limit for the first post (429, "ratelimited"): the echo waits for the next pass.
    sandbox.state.slack.rate_limited_calls = 1
    limited = await desk.mirror()
    assert limited.echoes == 0 and limited.given_back == 1 and "ratelimited" in limited.errors[0]
    assert (await desk.mirror()).echoes == 1
    assert (await desk.mirror()).echoes == 0
    echoed = [m for m in await messages(sandbox) if m["text"].startswith(":white_check_mark:")]
    assert [m["text"] for m in echoed] == [":white_check_mark: Delivered by WhatsApp."]

    async def not_delivered(body: str, ts: str, status: str, code: str, reason: str) -> dict[str, Any]:
        """An agent's reply the provider then reports as `status`: the one echo the next pass posts."""
        assert (await desk.answer(reply(thread, body, ts))).kind == "sent"
        await provider_reports(
            desk.database,
            CustomerCommunication.body == body,
            status=status,
            error_code=code,
            status_reason=reason,
        )
        assert (await desk.mirror()).echoes == 1
        last: dict[str, Any] = (await messages(sandbox))[-1]
        return last

    # A later reply misses WhatsApp's 24-hour window: said in words, with the template that reopens it.
    failed = await not_delivered(
        "Are you still there?", "1800000000.000150", "failed", "131047", "Re-engagement message"
    )
    assert "outside WhatsApp's 24-hour window" in failed["text"]
    assert failed["blocks"][1]["elements"][0]["value"] == "send whatsapp to #1 template chat_follow_up"

    # A carrier's "undelivered" is said too (it was never echoed, so the agent believed it arrived).
    undelivered = await not_delivered(
        "Did you get my last message?", "1800000000.000170", "undelivered", "30003", "Unreachable destination"
    )
    assert undelivered["text"] == (
        ":warning: Not delivered by WhatsApp: the phone is unreachable (switched off or out of coverage)."
    )

    # An echo Slack refuses for good (the channel archived) is dropped, not tried again every pass.
    assert (await desk.answer(reply(thread, "One more thing", "1800000000.000190"))).kind == "sent"
    await provider_reports(desk.database, CustomerCommunication.body == "One more thing", status="delivered")
    sandbox.state.slack.channels[LIVE_CHAT].is_archived = True
    refused = await desk.mirror()
    assert (refused.echoes, refused.given_back) == (0, 0) and "is_archived" in refused.errors[0]
    sandbox.state.slack.channels[LIVE_CHAT].is_archived = False
    assert (await desk.mirror()).echoes == 0


async def test_a_note_stays_internal_and_its_edit_follows_while_a_sent_reply_cannot_change(
    desk: SlackThreadDesk, sandbox: RunningSandbox
) -> None:
    chat_id = await customer_writes(desk, "I need my invoice again")
    await desk.mirror()
    thread = await thread_of(desk, chat_id)

    assert (
        await desk.answer(reply(thread, "Note: check the March invoice first", "1800000000.000200"))
    ).kind == "note"
    assert (
        await count(desk.database, CustomerCommunication, CustomerCommunication.direction == "outbound") == 0
    )
    assert await count(desk.database, ChatMessage, ChatMessage.is_note.is_(True)) == 1

    edited = await desk.changed(LIVE_CHAT, "1800000000.000200", LENA, TEAM, "note: check the April invoice")
    assert edited.kind == "note"
    async with desk.database.read_sessions() as session:
        note = await session.scalar(select(ChatMessage).where(ChatMessage.is_note.is_(True)))
    assert note is not None and note.body == "check the April invoice"

    assert (await desk.answer(reply(thread, "Sent it again just now.", "1800000000.000300"))).kind == "sent"
    gone = await desk.changed(LIVE_CHAT, "1800000000.000300", LENA, TEAM, None)
    assert gone.kind == "refused" and gone.say is not None and "already has your reply" in gone.say
    async with desk.database.read_sessions() as session:
        system = list(await session.scalars(select(ChatMessage.body).where(ChatMessage.author == "system")))
    assert (
        "Lena Hoffmann deleted a reply in Slack after it was sent; the customer keeps the original." in system
    )


async def test_strangers_viewers_and_unknown_threads_are_refused_and_nothing_is_sent(
    desk: SlackThreadDesk, sandbox: RunningSandbox
) -> None:
    chat_id = await customer_writes(desk, "Hello?")
    await desk.mirror()
    thread = await thread_of(desk, chat_id)

    stranger = await desk.answer(reply(thread, "I can help!", "1800000000.000400", user="U0STRANGER"))
    assert (stranger.kind, stranger.say) == ("refused", NOT_STAFF)
    viewer = await desk.answer(reply(thread, "Me too", "1800000000.000500", user="U0VIEWER1"))
    assert viewer.kind == "refused" and viewer.say is not None and "nothing was sent" in viewer.say

    unfilled = await desk.answer(reply(thread, "See you at {time}, {first_name}!", "1800000000.000550"))
    assert unfilled.kind == "refused" and unfilled.say is not None and "{time}" in unfilled.say

    ours = ThreadMessage(LIVE_CHAT, "1700000000.000001", "1800000000.000600", "hi", LENA, True, TEAM)
    assert (await desk.answer(ours)).say == UNKNOWN_THREAD
    theirs = dataclasses.replace(ours, root_is_ours=False)
    assert (await desk.answer(theirs)).kind == "ignored"
    assert (
        await count(desk.database, CustomerCommunication, CustomerCommunication.direction == "outbound") == 0
    )


async def test_a_reply_to_a_customer_who_opted_out_since_is_refused_with_the_reason(
    desk: SlackThreadDesk, sandbox: RunningSandbox
) -> None:
    chat_id = await customer_writes(desk, "Thanks")
    await desk.mirror()
    thread = await thread_of(desk, chat_id)
    async with desk.database.sessions() as session:
        record = ConsentRecord(customer_id=1, channel="whatsapp", status="opted_out", source="web_form")
        session.add(record)
        await session.flush()
        session.add(
            CustomerConsent(
                customer_id=1, channel="whatsapp", status="opted_out", source="web_form", record_id=record.id
            )
        )
        await session.commit()
    refused = await desk.answer(reply(thread, "You're welcome!", "1800000000.000700"))
    assert refused.kind == "refused" and refused.say is not None and refused.say.startswith("Not sent:")
    assert "opted out" in refused.say
    assert (
        await count(desk.database, CustomerCommunication, CustomerCommunication.direction == "outbound") == 0
    )


async def test_when_slack_limits_the_rate_the_echoes_of_a_pass_wait_for_the_next_one_together(
    desk: SlackThreadDesk, sandbox: RunningSandbox
) -> None:
    chat_id = await customer_writes(desk, "Can I move my appointment?")
    await desk.mirror()
    thread = await thread_of(desk, chat_id)
    for n, body in enumerate(("Of course.", "Which day suits you?")):
        assert (await desk.answer(reply(thread, body, f"1800000000.00030{n}"))).kind == "sent"
    await provider_reports(desk.database, CustomerCommunication.direction == "outbound", status="delivered")
    sandbox.state.slack.rate_limited_calls = 1
    calls = len(sandbox.state.slack.calls)
    limited = await desk.mirror()
    # The first post was refused; the second was not tried in the same pass, and both wait.
    assert (limited.echoes, limited.given_back) == (0, 2)
    assert len(sandbox.state.slack.calls) - calls == 1
    assert (await desk.mirror()).echoes == 2
    echoed = [m["text"] for m in await messages(sandbox) if m["text"].startswith(":white_check_mark:")]
    assert echoed == [":white_check_mark: Delivered by WhatsApp."] * 2


async def test_history_from_before_slack_is_not_posted_and_a_refused_post_is_tried_again(
    desk: SlackThreadDesk, sandbox: RunningSandbox
) -> None:
    await customer_writes(desk, "An old question")
    async with desk.database.sessions() as session:
        await session.execute(update(ChatMessage).values(created_at=desk.clock() - timedelta(hours=3)))
        await session.commit()
    assert (await desk.mirror()).posted == 0
    assert await messages(sandbox) == []

    sandbox.state.slack.channels[LIVE_CHAT].is_archived = True
    await customer_writes(desk, "A new question", n=2)
    failed = await desk.mirror()
    assert failed.posted == 0 and failed.given_back == 1 and "is_archived" in failed.errors[0]
    sandbox.state.slack.channels[LIVE_CHAT].is_archived = False
    assert (await desk.mirror()).posted == 1


async def test_a_clinics_customers_get_their_threads_in_its_teams_channel_and_old_threads_keep_working(
    desk: SlackThreadDesk, sandbox: RunningSandbox
) -> None:
    chat_id = await customer_writes(desk, "Before the teams had channels")
    await desk.mirror()
    old = await thread_of(desk, chat_id)
    assert old.channel_id == LIVE_CHAT
    async with desk.database.sessions() as session:
        session.add(Location(id=1, code="BER", name="Berlin Mitte", country="DE", timezone="Europe/Berlin"))
        await session.flush()
        customer = await session.get(Customer, 1)
        assert customer is not None
        customer.home_location_id = 1
        session.add(Customer(id=2, name="Bea", whatsapp_id="4915100000002", home_location_id=1))
        await session.commit()
    teams = dataclasses.replace(
        desk, settings=desk.settings.model_copy(update={"slack_chat_channels": "BER=C0BERLIN"})
    )

    now = teams.clock()
    message = InboundMessage(
        "whatsapp_cloud", Channel.WHATSAPP, "wamid.bea", "4915100000002", "us", "Hallo", now
    )
    async with ConversationUnitOfWork(teams.units.general()) as uow:
        await handle_customer_message(uow, CustomerMessage(message), InboundPolicy("Northwind"), now)
        await uow.commit()
    await customer_writes(teams, "And after", n=2)  # Ada's existing conversation
    await teams.mirror()
    async with teams.database.read_sessions() as session:
        threads = {t.session_id: t.channel_id for t in await session.scalars(select(ChatSlackThread))}
    assert threads[chat_id] == LIVE_CHAT  # the map is kept: a changed setting orphans nothing
    assert sorted(threads.values()) == ["C0BERLIN", LIVE_CHAT]
    berlin = sandbox.state.slack.channel_json("C0BERLIN", sandbox.base_url)
    assert [m["text"] for m in berlin if m.get("thread_ts")] == ["*Bea*: Hallo"]


async def test_a_file_an_edit_of_a_refused_reply_and_a_backlog_are_each_answered(
    desk: SlackThreadDesk, sandbox: RunningSandbox
) -> None:
    chat_id = await customer_writes(desk, "Here is my question")
    await desk.mirror()
    thread = await thread_of(desk, chat_id)

    with_file = dataclasses.replace(reply(thread, "See attached", "1800000000.000800"), has_files=True)
    refused = await desk.answer(with_file)
    assert refused.kind == "refused" and refused.say is not None and "nothing was sent" in refused.say

    # The agent fixes a refused reply by editing it: told that edits are not sent, rather than nothing.
    await desk.answer(reply(thread, "Costs {price}", "1800000000.000900"))
    edited = await desk.changed(LIVE_CHAT, "1800000000.000900", LENA, TEAM, "Costs 40 EUR", thread.thread_ts)
    assert edited.kind == "refused" and edited.say is not None and "new message" in edited.say
    assert (
        await count(desk.database, CustomerCommunication, CustomerCommunication.direction == "outbound") == 0
    )

    # Slack was away for hours: once the conversation has a thread, the backlog still reaches it.
    await customer_writes(desk, "Hello again?", n=2)
    async with desk.database.sessions() as session:
        await session.execute(
            update(ChatMessage)
            .where(ChatMessage.body == "Hello again?")
            .values(created_at=desk.clock() - timedelta(hours=3))
        )
        await session.commit()
    assert (await desk.mirror()).posted == 1
    assert (await messages(sandbox))[-1]["text"] == "*Ada Lovelace*: Hello again?"


async def test_the_first_agent_to_answer_an_unassigned_conversation_takes_it(
    desk: SlackThreadDesk, sandbox: RunningSandbox
) -> None:
    async with desk.database.sessions() as session:
        lena = await session.get(StaffUser, 1)
        assert lena is not None
        lena.availability = "away"
        await session.commit()
    chat_id = await customer_writes(desk, "Anyone?")
    await desk.mirror()
    thread = await thread_of(desk, chat_id)
    assert (await desk.answer(reply(thread, "I am here.", "1800000000.001000"))).kind == "sent"
    async with desk.database.read_sessions() as session:
        chat = await session.get(ChatSession, chat_id)
        notes = list(await session.scalars(select(ChatMessage.body).where(ChatMessage.author == "system")))
    assert chat is not None and chat.assigned_staff_id == 1
    assert "Lena Hoffmann took the conversation by answering it." in notes


@pytest.fixture
async def closers() -> AsyncIterator[list[Callable[[], Awaitable[None]]]]:
    """Things a test opened (HTTP sessions), closed after it."""
    opened: list[Callable[[], Awaitable[None]]] = []
    yield opened
    for close in opened:
        await close()


#: The smallest PDF the attachment rules recognise by its first bytes.
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def shared(sandbox: RunningSandbox, name: str, content: bytes, user: str = LENA) -> ThreadFile:
    """A file a person attached in the sandbox's Slack, as the message event names it."""
    workspace = sandbox.state.slack
    file_id = workspace.next_id("F")
    workspace.files[file_id] = SlackFile(
        id=file_id, name=name, length=len(content), alt_txt=None, created=0, content=content, user=user
    )
    listed = workspace.files[file_id].as_json(sandbox.base_url)
    return ThreadFile(name, listed["mimetype"], listed["url_private_download"], listed["size"])


def with_files(message: ThreadMessage, *files: ThreadFile) -> ThreadMessage:
    return dataclasses.replace(message, has_files=True, files=files)


async def test_a_file_shared_in_the_thread_reaches_the_customer_as_a_link_and_is_kept(
    desk: SlackThreadDesk, sandbox: RunningSandbox, closers: list[Callable[[], Awaitable[None]]]
) -> None:
    media = ProviderMedia(desk.settings)
    closers.append(media.close)
    desk = dataclasses.replace(desk, files=media)
    chat_id = await customer_writes(desk, "Can you send me the invoice?")
    await desk.mirror()
    thread = await thread_of(desk, chat_id)
    answered = await desk.answer(
        with_files(reply(thread, "Here it is", "1800000000.002000"), shared(sandbox, "invoice.pdf", PDF))
    )
    assert (answered.kind, answered.say) == ("sent", None)
    async with desk.database.read_sessions() as session:
        [body] = await session.scalars(
            select(CustomerCommunication.body).where(CustomerCommunication.direction == "outbound")
        )
        kept = (await session.execute(select(ChatAttachment.filename, ChatAttachment.content))).all()
    assert body.startswith("Here it is") and "https://switchboard.example/media/" in body, body
    assert [(name, content) for name, content in kept] == [("invoice.pdf", PDF)]

    # Slack retries the event: the reply and its file are not sent or kept twice.
    again = await desk.answer(
        with_files(reply(thread, "Here it is", "1800000000.002000"), shared(sandbox, "invoice.pdf", PDF))
    )
    assert again.kind == "duplicate"
    assert await count(desk.database, ChatAttachment) == 1
    assert (
        await count(desk.database, CustomerCommunication, CustomerCommunication.direction == "outbound") == 1
    )


async def test_files_that_cannot_go_are_refused_in_words_and_nothing_is_sent(
    desk: SlackThreadDesk, sandbox: RunningSandbox, closers: list[Callable[[], Awaitable[None]]]
) -> None:
    media = ProviderMedia(desk.settings)
    closers.append(media.close)
    chat_id = await customer_writes(desk, "Hello")
    await desk.mirror()
    thread = await thread_of(desk, chat_id)
    program = b"MZ\x90\x00" + b"\x00" * 200
    big = b"%PDF-1.4\n" + b"0" * 2048
    elsewhere = ThreadFile("x.pdf", "application/pdf", "https://files.example.org/x.pdf", 100)
    small = dataclasses.replace(
        desk, files=media, settings=desk.settings.model_copy(update={"attachment_max_bytes": 1024})
    )
    other_workspace = ProviderMedia(
        desk.settings.model_copy(update={"slack_bot_token": SecretStr("xoxb-another-workspace")})
    )
    closers.append(other_workspace.close)
    wrong_token = dataclasses.replace(desk, files=other_workspace)
    cases = [
        (
            dataclasses.replace(desk, files=media),
            (shared(sandbox, "a.pdf", PDF), shared(sandbox, "b.pdf", PDF)),
            "one file per reply",
        ),
        (dataclasses.replace(desk, files=media), (shared(sandbox, "photo.png", program),), "was not kept"),
        (dataclasses.replace(desk, files=media), (elsewhere,), "somewhere other than Slack"),
        (small, (shared(sandbox, "scan.pdf", big),), "A 2 KB file (scan.pdf) was not kept: files up to 1 KB"),
        (wrong_token, (shared(sandbox, "invoice.pdf", PDF),), "sign-in page"),
        (desk, (shared(sandbox, "invoice.pdf", PDF),), "attach the file in the Switchboard inbox"),
    ]
    for n, (which, files, words) in enumerate(cases):
        answered = await which.answer(
            with_files(reply(thread, "See attached", f"1800000000.00300{n}"), *files)
        )
        assert answered.kind == "refused" and answered.say is not None, answered
        assert words in answered.say, (words, answered.say)
        assert answered.say.startswith("Not sent:") or "nothing was sent" in answered.say, answered.say
    assert (
        await count(desk.database, CustomerCommunication, CustomerCommunication.direction == "outbound") == 0
    )
    assert await count(desk.database, ChatAttachment) == 0


async def test_a_note_with_a_file_keeps_the_file_among_staff_and_sends_nothing(
    desk: SlackThreadDesk, sandbox: RunningSandbox, closers: list[Callable[[], Awaitable[None]]]
) -> None:
    media = ProviderMedia(desk.settings)
    closers.append(media.close)
    chat_id = await customer_writes(desk, "Hello")
    await desk.mirror()
    thread = await thread_of(desk, chat_id)
    with_media = dataclasses.replace(desk, files=media)
    event = with_files(
        reply(thread, "note: the scan for the file", "1800000000.003100"), shared(sandbox, "scan.pdf", PDF)
    )
    assert (await with_media.answer(event)).kind == "note"
    assert (await with_media.answer(event)).kind == "duplicate"  # Slack's retry keeps nothing twice
    async with desk.database.read_sessions() as session:
        kept = (
            await session.execute(
                select(
                    ChatMessage.body, ChatMessage.is_note, ChatAttachment.filename, ChatAttachment.content
                ).join(ChatAttachment, ChatAttachment.message_id == ChatMessage.id)
            )
        ).all()
    assert [tuple(k) for k in kept] == [("the scan for the file", True, "scan.pdf", PDF)]
    assert (
        await count(desk.database, CustomerCommunication, CustomerCommunication.direction == "outbound") == 0
    )
    # A file that breaks the rules is refused for a note too, and nothing is saved.
    program = b"MZ\x90\x00" + b"\x00" * 200
    refused = await with_media.answer(
        with_files(reply(thread, "note: this one", "1800000000.003200"), shared(sandbox, "x.png", program))
    )
    assert refused.kind == "refused" and await count(desk.database, ChatAttachment) == 1
