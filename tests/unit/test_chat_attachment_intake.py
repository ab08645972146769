"""Files customers send, without providers: what each webhook names, how fetching ends, how staff chats show them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from bot.slack.threads import turn_text
from bot.telegram_staff.conversations import turn_html
from domain.conversations.attachments import (
    AttachmentRules,
    KeptFile,
    MediaReference,
    MediaTooLarge,
    MediaUnavailable,
    RefusedFile,
    TurnFile,
)
from domain.conversations.incoming_files import fetch_customer_files
from domain.conversations.model import CustomerMessage, WebhookDelivery
from domain.conversations.slack_threads import ThreadCard, ThreadTurn
from domain.delivery.ports import InboundMessage, OutboundFile, OutboundMessage
from domain.vocabulary import Channel, ChatStatus
from providers.smtp.webhooks import email_media
from providers.telegram.webhooks import message_media as telegram_media
from providers.twilio.webhooks import message_media as twilio_media
from providers.twilio.webhooks import parse_twilio_inbound
from providers.webhook_bodies import ReadingContext
from providers.whatsapp.driver import WhatsAppCloudDriver
from providers.whatsapp.webhooks import read_webhook

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 100
PDF = b"%PDF-1.4\n" + b"\x02" * 100
AT = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def test_a_whatsapp_image_and_document_are_named_by_media_id() -> None:
    messages = [
        {
            "from": "4915",
            "id": "wamid.1",
            "timestamp": "1764666000",
            "type": "image",
            "image": {"id": "1001", "mime_type": "image/jpeg", "caption": "my rash"},
        },
        {
            "from": "4915",
            "id": "wamid.2",
            "timestamp": "1764666000",
            "type": "document",
            "document": {"id": "1002", "mime_type": "application/pdf", "filename": "letter.pdf"},
        },
        {"from": "4915", "id": "wamid.3", "timestamp": "1764666000", "type": "text", "text": {"body": "hi"}},
    ]
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"messages": messages}}]}],
    }
    contents = read_webhook(
        WebhookDelivery("whatsapp_cloud", "webhook", "k", json.dumps(body)), ReadingContext("s")
    )
    by_id = {m.message.provider_message_id: m for m in contents.messages}
    assert by_id["wamid.1"].message.body == "my rash"
    assert by_id["wamid.1"].media == (MediaReference("whatsapp_cloud", "1001", "image", "image/jpeg"),)
    assert by_id["wamid.2"].media[0].filename == "letter.pdf" and by_id["wamid.2"].media[0].locator == "1002"
    assert by_id["wamid.3"].media == ()


def test_a_telegram_photo_is_fetched_at_its_largest_size_and_a_document_with_its_name() -> None:
    photo = {"photo": [{"file_id": "small", "file_size": 900}, {"file_id": "large", "file_size": 90_000}]}
    (ref,) = telegram_media(photo)
    assert (ref.locator, ref.kind, ref.declared_size) == ("large", "photo", 90_000)
    document = {
        "document": {
            "file_id": "doc",
            "file_name": "scan.pdf",
            "mime_type": "application/pdf",
            "file_size": 5,
        }
    }
    (ref,) = telegram_media(document)
    assert (ref.filename, ref.declared_type, ref.declared_size) == ("scan.pdf", "application/pdf", 5)
    assert telegram_media({"text": "hello"}) == ()


def test_an_mms_names_each_media_url_and_a_bare_mms_is_not_empty() -> None:
    params = {
        "MessageSid": "MM1",
        "From": "+1555",
        "To": "+1666",
        "Body": "",
        "NumMedia": "2",
        "MediaUrl0": "https://api.twilio.com/a",
        "MediaContentType0": "image/png",
        "MediaUrl1": "https://api.twilio.com/b",
        "MediaContentType1": "application/pdf",
    }
    assert [ref.locator for ref in twilio_media(params)] == [
        "https://api.twilio.com/a",
        "https://api.twilio.com/b",
    ]
    assert parse_twilio_inbound(params).body == "[attachment]"
    assert twilio_media({**params, "NumMedia": "many"}) == ()


def test_email_attachments_travel_inside_the_message() -> None:
    email = EmailMessage()
    email["From"], email["To"] = "a@example.com", "b@example.com"
    email.set_content("see attached")
    email.add_attachment(PDF, maintype="application", subtype="pdf", filename="x.pdf")
    (ref,) = email_media(email.as_bytes())
    assert (ref.filename, ref.declared_type, ref.content) == ("x.pdf", "application/pdf", PDF)


class FakeSource:
    def __init__(self, answers: dict[str, bytes | Exception], delay: float = 0.0) -> None:
        self.answers = answers
        self.delay = delay
        self.asked: list[str] = []

    async def fetch(self, reference: MediaReference, max_bytes: int) -> bytes:
        self.asked.append(reference.locator)
        await asyncio.sleep(self.delay)
        answer = self.answers[reference.locator]
        if isinstance(answer, Exception):
            raise answer
        return answer


def message_with(*refs: MediaReference, message_id: str = "m1") -> CustomerMessage:
    inbound = InboundMessage("whatsapp_cloud", Channel.WHATSAPP, message_id, "4915", "biz", "[image]", AT)
    return CustomerMessage(inbound, media=refs)


def ref(locator: str, kind: str = "image", **more: object) -> MediaReference:
    return MediaReference("whatsapp_cloud", locator, kind, **more)  # type: ignore[arg-type]


async def test_fetching_keeps_good_files_and_says_why_the_others_were_not_kept() -> None:
    source = FakeSource(
        {
            "ok": PNG,
            "big": MediaTooLarge(12 * 1024 * 1024),
            "gone": MediaUnavailable("WhatsApp no longer has the file"),
            "exe": b"MZ" + b"\x00" * 10,
        }
    )
    refs = (
        ref("ok"),
        ref("big"),
        ref("gone"),
        ref("exe", "document", filename="a.png"),
        ref("clip", "video", declared_size=14 * 1024 * 1024),
    )
    found = await fetch_customer_files([message_with(*refs)], source, AttachmentRules(), 5)
    kept, big, gone, exe, clip = found["m1"]
    assert isinstance(kept, KeptFile) and kept.content_type == "image/png"
    assert isinstance(big, RefusedFile) and big.reason.startswith("A 12 MB image was not kept")
    assert gone == RefusedFile(
        "Could not fetch the image the customer sent from WhatsApp: WhatsApp no longer has the file. "
        "Ask them to send it again."
    )
    assert isinstance(exe, RefusedFile) and exe.reason.startswith("A program (a.png) was not kept")
    assert clip == RefusedFile("A 14 MB video was not kept: files up to 10 MB, images and PDFs only.")
    assert "clip" not in source.asked  # a video is never downloaded


async def test_a_declared_size_over_the_limit_is_refused_without_downloading() -> None:
    source = FakeSource({})
    found = await fetch_customer_files(
        [message_with(ref("huge", declared_size=11 * 1024 * 1024))], source, AttachmentRules(), 5
    )
    assert isinstance(found["m1"][0], RefusedFile) and source.asked == []


async def test_a_slow_provider_is_given_up_after_the_time_limit() -> None:
    source = FakeSource({"slow": PNG}, delay=5)
    started = asyncio.get_running_loop().time()
    found = await fetch_customer_files([message_with(ref("slow"))], source, AttachmentRules(), 0.05)
    assert asyncio.get_running_loop().time() - started < 1
    assert found["m1"] == (
        RefusedFile(
            "Could not fetch the image the customer sent from WhatsApp: no answer within 0.05 seconds. "
            "Ask them to send it again."
        ),
    )


async def test_without_a_source_files_are_noted_and_messages_without_files_fetch_nothing() -> None:
    assert await fetch_customer_files([message_with()], None, AttachmentRules(), 1) == {}
    (outcome,) = (await fetch_customer_files([message_with(ref("x"))], None, AttachmentRules(), 1))["m1"]
    assert isinstance(outcome, RefusedFile) and "not set up" in outcome.reason


CARD = ThreadCard(42, "whatsapp", ChatStatus.OPEN, 7, "Ana", None, None, None, None)


@pytest.mark.parametrize("name", ["scan.pdf", "a|b>c.pdf"])
def test_staff_chats_show_each_file_with_its_size_and_a_dashboard_link(name: str) -> None:
    turn = ThreadTurn(
        1, 42, "customer", None, "see file", False, AT, files=(TurnFile(9, name, "application/pdf", 2048),)
    )
    slack = turn_text(turn, CARD, {"name"}, "https://sb.example/")
    assert "\n📎 <https://sb.example/communication/chat/attachments/9|" in slack and "(2 KB)>" in slack
    assert slack.count("|") == 1 and ">c" not in slack  # the name cannot break out of the link
    telegram = turn_html(turn, CARD, "https://sb.example", {"name"})
    assert '📎 <a href="https://sb.example/communication/chat/attachments/9">' in telegram
    assert "(2 KB)</a>" in telegram and "<b>c" not in telegram


def test_whatsapp_sends_a_reply_file_by_link_with_the_words_as_its_caption() -> None:
    pdf = OutboundFile("https://sb.example/media/1/ab?expires=1&sig=x", "invoice.pdf", "application/pdf")
    message = OutboundMessage(5, "k", Channel.WHATSAPP, "+4915", "Here it is", attachment=pdf)
    body = WhatsAppCloudDriver.request_body(message)
    assert body["type"] == "document"
    assert body["document"] == {"link": pdf.url, "caption": "Here it is", "filename": "invoice.pdf"}
    image = OutboundFile("https://sb.example/media/1/cd?expires=1&sig=y", "x.png", "image/png")
    body = WhatsAppCloudDriver.request_body(
        OutboundMessage(6, "k2", Channel.WHATSAPP, "+4915", "Look", attachment=image)
    )
    assert body["type"] == "image" and body["image"] == {"link": image.url, "caption": "Look"}
    assert (
        OutboundFile.from_payload(pdf.as_payload()) == pdf and OutboundFile.from_payload({"url": 1}) is None
    )
