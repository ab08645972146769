"""A reply's file through the real drivers to the sandbox: WhatsApp media by link, Telegram sendPhoto/sendDocument
by URL, each with the words as caption; a reply too long for a caption goes as text with the link."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from api.sandbox import RunningSandbox, SandboxConfig, run_sandbox
from domain.delivery.ports import OutboundFile, OutboundMessage
from domain.vocabulary import Channel
from providers.telegram.driver import TelegramDriver
from providers.whatsapp.driver import WhatsAppCloudDriver

PDF = OutboundFile(
    "https://sb.example/media/7/" + "a" * 64 + "?expires=9&sig=s", "invoice.pdf", "application/pdf"
)
PNG = OutboundFile("https://sb.example/media/7/" + "b" * 64 + "?expires=9&sig=t", "x-ray.png", "image/png")


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    config = dataclasses.replace(SandboxConfig(), port=0, smtp_port=0, send_status_webhooks=False)
    async with run_sandbox(config) as running:
        yield running


async def test_whatsapp_sends_the_file_by_link_and_a_long_reply_as_text(sandbox: RunningSandbox) -> None:
    config = sandbox.state.config
    driver = WhatsAppCloudDriver(
        config.whatsapp_token, config.whatsapp_phone_number_id, base_url=sandbox.base_url
    )
    sandbox.state.note_whatsapp_inbound("15551230099")  # the customer wrote: the 24-hour window is open
    try:
        await driver.send(
            OutboundMessage(1, "f1", Channel.WHATSAPP, "+15551230099", "Your invoice", attachment=PDF)
        )
        await driver.send(
            OutboundMessage(2, "f2", Channel.WHATSAPP, "+15551230099", "x" * 1500, attachment=PNG)
        )
    finally:
        await driver.close()
    first, second = [m for m in sandbox.state.messages if m.provider == "whatsapp_cloud"]
    assert (first.details["type"], first.body) == ("document", "[document: invoice.pdf] Your invoice")
    assert second.details["type"] == "text" and second.body == "x" * 1500


async def test_telegram_sends_a_photo_or_document_by_url_with_the_caption(sandbox: RunningSandbox) -> None:
    driver = TelegramDriver(sandbox.state.config.telegram_bot_token, base_url=sandbox.base_url)
    try:
        await driver.send(OutboundMessage(1, "t1", Channel.TELEGRAM, "4242", "Your invoice", attachment=PDF))
        await driver.send(OutboundMessage(2, "t2", Channel.TELEGRAM, "4242", "Your x-ray", attachment=PNG))
        await driver.send(OutboundMessage(3, "t3", Channel.TELEGRAM, "4242", "y" * 1500, attachment=PNG))
    finally:
        await driver.close()
    calls = [(call["method"], call["params"]) for call in sandbox.state.telegram_calls]
    assert [method for method, _ in calls] == ["sendDocument", "sendPhoto", "sendMessage"]
    assert calls[0][1]["document"] == PDF.url and calls[0][1]["caption"] == "Your invoice"
    assert calls[1][1]["photo"] == PNG.url and calls[1][1]["caption"] == "Your x-ray"
    assert calls[2][1]["text"] == "y" * 1500


async def test_telegram_uploads_the_file_itself_when_the_dispatcher_hands_over_its_bytes(
    sandbox: RunningSandbox,
) -> None:
    """Then Telegram never has to reach our public URL: the bytes go up as multipart, as Bot API uploads do."""
    pdf_bytes = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    png_bytes = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    driver = TelegramDriver(sandbox.state.config.telegram_bot_token, base_url=sandbox.base_url)
    try:
        pdf = dataclasses.replace(PDF, content=pdf_bytes)
        png = dataclasses.replace(PNG, content=png_bytes)
        await driver.send(OutboundMessage(1, "u1", Channel.TELEGRAM, "4242", "Your invoice", attachment=pdf))
        await driver.send(OutboundMessage(2, "u2", Channel.TELEGRAM, "4242", "Your x-ray", attachment=png))
    finally:
        await driver.close()
    calls = sandbox.state.telegram_calls
    # aiogram names each part at random and points the field at it (attach://NAME), as the Bot API allows.
    assert [(c["method"], list(c["files"].values())) for c in calls] == [
        ("sendDocument", [{"filename": "invoice.pdf", "size": len(pdf_bytes)}]),
        ("sendPhoto", [{"filename": "x-ray.png", "size": len(png_bytes)}]),
    ]
    assert calls[0]["params"]["document"].startswith("attach://")
    assert calls[1]["params"]["photo"].startswith("attach://")
    assert all(PDF.url not in str(c["params"]) and PNG.url not in str(c["params"]) for c in calls)
    assert [c["params"]["caption"] for c in calls] == ["Your invoice", "Your x-ray"]
