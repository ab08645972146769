"""Files customers send, on SQLite and PostgreSQL, through the sandbox over HTTP: WhatsApp, Telegram, MMS and
email files fetched as the providers serve them, kept when they are images or PDFs within the limit, shown to
signed-in staff with safe headers; too large, disguised or unfetchable files refused in words, the text kept."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvicorn
from sqlalchemy import select

from api.app import create_app
from api.auth import login_link
from api.sandbox import RunningSandbox, run_sandbox
from storage.database import Database
from storage.models import ChatAttachment, ChatMessage, Customer, StaffUser
from switchboard.delivery import sandbox_config
from switchboard.settings import Settings
from switchboard.wiring import build_container

WA_ID = "15551230042"
TELEGRAM_CHAT = 4242001
PHONE = "+15551230043"
EMAIL = "ada@example.com"
AGENT = "lena@northwind.example"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 2000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class World:
    sandbox: RunningSandbox
    database: Database
    settings: Settings
    web: str
    staff_id: int


@pytest.fixture
async def world(database: Database, database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """Switchboard served over real HTTP on this engine, its sandbox, a customer on every channel, an agent."""
    async with database.sessions() as session:
        agent = StaffUser(email=AGENT, name="Lena", role="agent", availability="online")
        session.add(agent)
        session.add(
            Customer(
                name="Ada Lovelace",
                whatsapp_id=WA_ID,
                telegram_chat_id=TELEGRAM_CHAT,
                phone_e164=PHONE,
                email=EMAIL,
                locale="en",
            )
        )
        await session.commit()
        staff_id = agent.id
    web_port = free_port()
    settings = Settings(
        database_url=database_url,
        public_url=f"http://127.0.0.1:{web_port}",
        sandbox_port=free_port(),
        sandbox_smtp_port=free_port(),
        worker_in_process=False,
        environment="test",
    )
    container = build_container(settings)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, container), host="127.0.0.1", port=web_port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        async with run_sandbox(sandbox_config(settings, send_status_webhooks=False)) as sandbox:
            yield World(sandbox, database, settings, f"http://127.0.0.1:{web_port}", staff_id)
    finally:
        server.should_exit = True
        await serving
        await container.close()


async def customer_sends(world: World, channel: str, **fields: Any) -> None:
    url = f"{world.sandbox.base_url}/_sandbox/customer/{channel}"
    async with aiohttp.ClientSession() as session, session.post(url, json=fields) as answer:
        assert answer.status == 202, await answer.text()


def attached(content: bytes, name: str, kind: str, **more: str) -> dict[str, str]:
    return {"file_base64": base64.b64encode(content).decode(), "file_name": name, "file_type": kind, **more}


async def turns_after(world: World, body: str, count: int = 1) -> list[tuple[str, str]]:
    """(author, body) of the customer's turn with `body` and the `count - 1` turns after it, once they are in."""
    for _ in range(400):
        async with world.database.read_sessions() as session:
            first = await session.scalar(select(ChatMessage.id).where(ChatMessage.body == body))
            if first is not None:
                rows = (
                    await session.execute(
                        select(ChatMessage.author, ChatMessage.body)
                        .where(ChatMessage.id >= first)
                        .order_by(ChatMessage.id)
                    )
                ).all()
                if len(rows) >= count:
                    return [(row.author, row.body) for row in rows[:count]]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no turn {body!r} arrived")


async def kept_files(world: World) -> list[ChatAttachment]:
    async with world.database.read_sessions() as session:
        return list((await session.scalars(select(ChatAttachment).order_by(ChatAttachment.id))).all())


async def signed_in(world: World) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    link = login_link(world.web, world.settings.session_secret, world.staff_id, 15, datetime.now(UTC))
    async with session.get(link, allow_redirects=False) as answer:
        assert answer.status == 303
    return session


async def test_an_image_on_whatsapp_is_kept_shown_and_served_inline_to_staff_only(world: World) -> None:
    await customer_sends(
        world,
        "whatsapp",
        **{"from": WA_ID, "body": "My rash, see photo"},
        **attached(PNG, "rash.png", "image/png"),
    )
    assert await turns_after(world, "My rash, see photo") == [("customer", "My rash, see photo")]
    (file,) = await kept_files(world)
    assert (file.content_type, file.filename, file.size_bytes, bytes(file.content)) == (
        "image/png",
        "image.png",  # WhatsApp names no image: the name says what its bytes are
        len(PNG),
        PNG,
    )
    url = f"{world.web}/communication/chat/attachments/{file.id}"
    async with aiohttp.ClientSession() as anonymous, anonymous.get(url, allow_redirects=False) as answer:
        assert answer.status in (303, 401) and PNG not in await answer.read()
        assert answer.headers.get("location", "/login").startswith("/login")
    staff = await signed_in(world)
    try:
        async with staff.get(url) as answer:
            assert answer.status == 200 and await answer.read() == PNG
            assert answer.headers["content-type"] == "image/png"
            assert answer.headers["content-disposition"].startswith("inline;")
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert "script-src 'none'" in answer.headers["content-security-policy"]
        async with world.database.read_sessions() as session:
            chat_id = await session.scalar(
                select(ChatMessage.session_id).where(ChatMessage.id == file.message_id)
            )
        async with staff.get(f"{world.web}/communication/chat/{chat_id}") as page:
            text = await page.text()
        assert f'<img src="/communication/chat/attachments/{file.id}"' in text and "image.png (2 KB)" in text
        async with staff.get(f"{world.web}/communication/chat/attachments/999999") as missing:
            assert missing.status == 404
    finally:
        await staff.close()
    fetched = [call for call in world.sandbox.state.webhook_log if "whatsapp" in str(call)]
    assert fetched, "the message came by the sandbox's signed webhook"


async def test_a_pdf_on_telegram_is_kept_and_downloaded_as_an_attachment(world: World) -> None:
    await customer_sends(
        world,
        "telegram",
        chat_id=str(TELEGRAM_CHAT),
        text="My referral letter",
        **attached(PDF, "referral.pdf", "application/pdf"),
    )
    await turns_after(world, "My referral letter")
    (file,) = await kept_files(world)
    assert (file.content_type, file.filename) == ("application/pdf", "referral.pdf")
    staff = await signed_in(world)
    try:
        async with staff.get(f"{world.web}/communication/chat/attachments/{file.id}") as answer:
            assert await answer.read() == PDF
            assert answer.headers["content-type"].startswith("application/pdf")
            assert answer.headers["content-disposition"] == "attachment; filename*=UTF-8''referral.pdf"
            assert "sandbox" in answer.headers["content-security-policy"]
    finally:
        await staff.close()
    calls = [call["method"] for call in world.sandbox.state.telegram_calls]
    assert "getFile" in calls  # fetched as Telegram hands files out


async def test_a_file_over_the_limit_is_not_kept_and_the_agent_is_told_with_the_text_kept(
    world: World,
) -> None:
    eleven_mb = PNG + b"\x00" * (11 * 1024 * 1024 - len(PNG))
    await customer_sends(
        world,
        "whatsapp",
        **{"from": WA_ID, "body": "The big scan"},
        **attached(eleven_mb, "scan.png", "image/png"),
    )
    turns = await turns_after(world, "The big scan", 2)
    assert turns == [
        ("customer", "The big scan"),
        ("system", "An 11 MB image was not kept: files up to 10 MB, images and PDFs only."),
    ]
    assert await kept_files(world) == []


async def test_a_program_disguised_as_a_png_is_refused(world: World) -> None:
    await customer_sends(
        world,
        "telegram",
        chat_id=str(TELEGRAM_CHAT),
        text="see attached",
        **attached(EXE, "photo.png", "application/octet-stream"),
    )
    turns = await turns_after(world, "see attached", 2)
    assert turns[1] == (
        "system",
        "A 2 KB program (photo.png) was not kept: files up to 10 MB, images and PDFs only.",
    )
    assert await kept_files(world) == []


async def test_a_failed_download_keeps_the_message_with_a_note(world: World) -> None:
    await customer_sends(
        world,
        "whatsapp",
        **{"from": WA_ID, "body": "Here is my x-ray"},
        **attached(PNG, "xray.png", "image/png", media_fault="500"),
    )
    turns = await turns_after(world, "Here is my x-ray", 2)
    assert turns[0] == ("customer", "Here is my x-ray")
    assert turns[1][0] == "system"
    assert turns[1][1].startswith(
        "Could not fetch the image the customer sent from WhatsApp: WhatsApp answered"
    )
    assert turns[1][1].endswith("Ask them to send it again.")
    assert await kept_files(world) == []


async def test_an_mms_picture_is_fetched_with_twilio_credentials(world: World) -> None:
    await customer_sends(
        world, "sms", **{"from": PHONE, "body": "MMS photo"}, **attached(PNG, "mms.png", "image/png")
    )
    await turns_after(world, "MMS photo")
    (file,) = await kept_files(world)
    assert file.content_type == "image/png" and bytes(file.content) == PNG


async def test_an_email_attachment_is_kept_and_a_blocked_one_refused(world: World) -> None:
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = EMAIL, "support@northwind.example", "Invoice"
    email["Message-ID"] = make_msgid(domain="customer.example")
    email.set_content("Invoice and a program attached")
    email.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    email.add_attachment(EXE, maintype="image", subtype="png", filename="cute.png")
    url = f"{world.sandbox.base_url}/_sandbox/customer/email"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=email.as_bytes(), headers={"Content-Type": "message/rfc822"}) as answer,
    ):
        assert answer.status == 202
    turns = await turns_after(world, "Invoice and a program attached", 2)
    assert turns[1] == (
        "system",
        "A 2 KB program (cute.png) was not kept: files up to 10 MB, images and PDFs only.",
    )
    (file,) = await kept_files(world)
    assert (file.filename, file.content_type) == ("invoice.pdf", "application/pdf")
