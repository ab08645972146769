"""An agent attaches an image or PDF to a reply, on SQLite and PostgreSQL: checked by the same rules, kept on the
staff turn, and sent to the customer as a signed, expiring link Switchboard serves without a session."""

from __future__ import annotations

import hashlib
import re
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from api.app import create_app
from api.sandbox import run_sandbox
from domain.vocabulary import Channel
from providers.smtp.driver import SmtpEmailDriver
from storage.database import Database
from storage.models import ChatAttachment, ChatMessage, ChatSession, Customer, CustomerCommunication
from switchboard.delivery import build_dispatcher
from switchboard.settings import Settings
from switchboard.wiring import build_container
from tests.integration.test_chat_live import (
    AGENT,
    busiest_customer,
    client,
    settings,
    sign_in,
)
from tests.integration.test_drivers_sandbox import sandbox_config
from tests.integration.test_webhooks import WA_ID, post_email, post_whatsapp, whatsapp_body
from tests.notices import said_after

__all__ = ["client", "settings"]  # the fixtures this module borrows

Client = AsyncTestClient[Any]
PDF = b"%PDF-1.7\n" + b"\x03" * 3000
EXE = b"MZ\x90\x00" + b"\x00" * 500


def csrf_token(html: str) -> str:
    found = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def customer_writes_now(client: Client, settings: Settings, database: Database, text: str) -> int:
    """A WhatsApp message sent just now (WhatsApp's 24-hour window is open); its conversation."""
    message = {"from": WA_ID, "id": "wamid.files1", "timestamp": str(int(time.time())), "type": "text"}
    raw = whatsapp_body(messages=[{**message, "text": {"body": text}}])
    assert (await post_whatsapp(client, settings, raw)).status_code == 200
    async with database.read_sessions() as session:
        return int(
            (await session.scalars(select(ChatMessage.session_id).where(ChatMessage.body == text))).one()
        )


async def reply_with_file(
    client: Client, chat_id: int, body: str, name: str, content: bytes, kind: str
) -> Any:
    page = f"/communication/chat/{chat_id}"
    token = csrf_token((await client.get(page)).text)
    return await client.post(
        f"{page}/reply",
        data={
            "body": body,
            "request_key": hashlib.sha256(body.encode()).hexdigest()[:20],
            "_csrf_token": token,
        },
        files={"file": (name, content, kind)},
        follow_redirects=False,
    )


async def test_a_pdf_reply_is_kept_and_reaches_the_customer_as_a_signed_link(
    client: Client, database: Database, settings: Settings
) -> None:
    await busiest_customer(database)
    chat_id = await customer_writes_now(client, settings, database, "Can you send my invoice?")
    await sign_in(client, database, settings, AGENT)

    refused = await reply_with_file(client, chat_id, "Here it is", "invoice.png", EXE, "image/png")
    assert refused.status_code == 422
    assert "A program (invoice.png) was not kept: files up to 10 MB, images and PDFs only." in refused.text
    assert "Here it is" in refused.text  # the agent's words stay in the box
    eleven_mb = PDF + b"\x00" * (11 * 1024 * 1024 - len(PDF))
    too_large = await reply_with_file(client, chat_id, "Here it is", "big.pdf", eleven_mb, "application/pdf")
    assert too_large.status_code == 422  # said in words, not refused by the web server's body cap
    assert "An 11 MB PDF (big.pdf) was not kept: files up to 10 MB, images and PDFs only." in too_large.text

    sent = await reply_with_file(client, chat_id, "Here it is", "invoice.pdf", PDF, "application/pdf")
    assert sent.status_code == 303, sent.text
    async with database.read_sessions() as session:
        message = (
            await session.scalars(
                select(CustomerCommunication)
                .where(CustomerCommunication.direction == "outbound")
                .order_by(CustomerCommunication.id.desc())
                .limit(1)
            )
        ).one()
        (file,) = (await session.scalars(select(ChatAttachment))).all()
        turn = await session.get(ChatMessage, file.message_id)
    assert turn is not None and turn.author == "staff" and turn.session_id == chat_id
    assert (file.filename, file.content_type, bytes(file.content)) == ("invoice.pdf", "application/pdf", PDF)
    assert message.body.startswith("Here it is\n\n📎 invoice.pdf (3 KB): http")
    link = message.body.rsplit(" ", 1)[-1]
    # WhatsApp also gets the file itself, fetched by Meta from the same link (media by link).
    assert (message.payload or {})["attachment"] == {
        "url": link,
        "filename": "invoice.pdf",
        "content_type": "application/pdf",
        "chat_id": chat_id,  # which kept file: email carries its bytes as a MIME part
        "sha256": file.sha256,
    }
    path = urlsplit(link).path + "?" + urlsplit(link).query
    assert path.startswith(f"/media/{chat_id}/{file.sha256}?expires=")

    async with AsyncTestClient(create_app(settings)) as stranger:  # no session: the link alone opens it
        opened = await stranger.get(path)
        assert opened.status_code == 200 and opened.content == PDF
        assert opened.headers["content-disposition"] == "attachment; filename*=UTF-8''invoice.pdf"
        assert opened.headers["x-content-type-options"] == "nosniff"
        assert "script-src 'none'" in opened.headers["content-security-policy"]
        forged = await stranger.get(path[:-4] + ("0000" if not path.endswith("0000") else "1111"))
        assert forged.status_code == 404 and PDF not in forged.content
        expired = re.sub(r"expires=\d+", "expires=1000", path)
        assert (await stranger.get(expired)).status_code == 404
        other_chat = path.replace(f"/media/{chat_id}/", f"/media/{chat_id + 1}/")
        assert (await stranger.get(other_chat)).status_code == 404

    page = (await client.get(f"/communication/chat/{chat_id}")).text
    assert f"/communication/chat/attachments/{file.id}" in page and "invoice.pdf (3 KB)" in page


async def test_a_pdf_reply_on_email_reaches_the_mailbox_as_a_mime_attachment(
    client: Client, database: Database, settings: Settings
) -> None:
    """Through the worker as it is wired: the dispatcher hands the SMTP driver the kept file's bytes (no
    download of our own link), and the mailbox gets the PDF attached as well as its link in the words."""
    customer_id = await busiest_customer(database)
    async with database.read_sessions() as session:
        address = (await session.scalars(select(Customer.email).where(Customer.id == customer_id))).one()
    assert address
    question = EmailMessage()
    question["From"] = address
    question["To"] = "hello@northwind.example"
    question["Subject"] = "AW: Invoice"
    question["Message-ID"] = "<invoice-q@customer.example>"
    question.set_content("Could you email me the invoice?")
    assert (await post_email(client, settings, question.as_bytes())).status_code in (200, 202)
    async with database.read_sessions() as session:
        chat_id = (
            await session.scalars(
                select(ChatSession.id).where(
                    ChatSession.customer_id == customer_id, ChatSession.channel == "email"
                )
            )
        ).one()
    await sign_in(client, database, settings, AGENT)
    sent = await reply_with_file(client, chat_id, "Your invoice", "invoice.pdf", PDF, "application/pdf")
    assert sent.status_code == 303, sent.text

    async with run_sandbox(sandbox_config("http://127.0.0.1:9")) as sandbox:
        container = build_container(settings)
        try:
            driver = SmtpEmailDriver(
                sandbox.host, sandbox.smtp_port, None, None, "Clinic <hello@clinic.example>", start_tls=False
            )
            assert await build_dispatcher(container, {Channel.EMAIL: driver}, {}).deliver_batch() >= 1
        finally:
            await container.close()
        [mail] = [m for m in sandbox.state.emails if address in m.rcpt_tos]
    received = message_from_bytes(mail.raw, policy=policy.default)
    parts = [
        (p.get_filename(), p.get_content_type(), p.get_payload(decode=True))
        for p in received.iter_attachments()
    ]  # type: ignore[attr-defined]
    assert parts == [("invoice.pdf", "application/pdf", PDF)]
    # Under the customer's own subject, threaded under their email in their mail program (the walk's reply
    # came as "Your message to Northwind Clinics", in a thread of its own).
    assert (received["Subject"], received["In-Reply-To"], received["References"]) == (
        "Re: Invoice",
        "<invoice-q@customer.example>",
        "<invoice-q@customer.example>",
    )
    text = received.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Your invoice") and "📎 invoice.pdf (3 KB): http" in text


async def test_a_note_keeps_the_file_chosen_in_the_reply_box_among_staff(
    client: Client, database: Database, settings: Settings
) -> None:
    await busiest_customer(database)
    chat_id = await customer_writes_now(client, settings, database, "Here is my referral letter")
    await sign_in(client, database, settings, AGENT)
    page = f"/communication/chat/{chat_id}"
    outbound = (
        select(func.count())
        .select_from(CustomerCommunication)
        .where(CustomerCommunication.direction == "outbound")
    )
    async with database.read_sessions() as session:
        outbound_before = await session.scalar(outbound)

    async def note_with(name: str, content: bytes, body: str = "Referral for the dermatologist") -> Any:
        token = csrf_token((await client.get(page)).text)
        return await client.post(
            f"{page}/note",
            data={"body": body, "_csrf_token": token},
            files={"file": (name, content, "application/pdf")},
            follow_redirects=False,
        )

    refused = await note_with("letter.pdf", EXE)
    assert refused.status_code == 422 and "was not kept" in refused.text
    assert "Referral for the dermatologist" in refused.text  # the words stay in the box
    saved = await note_with("letter.pdf", PDF)
    assert saved.status_code == 303 and said_after(saved)[1] == {"done": "note"}
    only_file = await note_with("second.pdf", PDF, body="")
    assert only_file.status_code == 303
    async with database.read_sessions() as session:
        kept = (
            await session.execute(
                select(ChatMessage.body, ChatMessage.is_note, ChatAttachment.filename)
                .join(ChatAttachment, ChatAttachment.message_id == ChatMessage.id)
                .order_by(ChatAttachment.id)
            )
        ).all()
        outbound_after = await session.scalar(outbound)
    assert [tuple(k) for k in kept] == [
        ("Referral for the dermatologist", True, "letter.pdf"),
        ("[file: second.pdf]", True, "second.pdf"),
    ]
    assert outbound_after == outbound_before  # a note never leaves
    shown = (await client.get(page)).text
    assert "letter.pdf (3 KB)" in shown and "second.pdf (3 KB)" in shown
