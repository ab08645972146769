"""Webhook signature checks and payload parsing for every provider, on payloads shaped like the real ones."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from domain.delivery.ports import Choice, Choices, OutboundMessage, WhatsAppTemplateCall
from domain.vocabulary import Channel, MessageStatus
from providers.smtp.driver import SmtpEmailDriver, id_check, message_id_for
from providers.smtp.webhooks import parse_delivery_report, parse_inbound_email
from providers.telegram.webhooks import parse_telegram_update, verify_telegram_secret
from providers.twilio.webhooks import parse_twilio_inbound, parse_twilio_status, verify_twilio_signature
from providers.webhook_bodies import MalformedWebhook
from providers.whatsapp.driver import WhatsAppCloudDriver
from providers.whatsapp.webhooks import (
    parse_whatsapp_webhook,
    verify_whatsapp_handshake,
    verify_whatsapp_signature,
)

TWILIO_TOKEN = "12345678901234567890123456789012"
STATUS_URL = "https://switchboard.example.com/webhooks/twilio/status?mid=1234"
APP_SECRET = "whatsapp-app-secret"


def twilio_status_params(**changes: str) -> dict[str, str]:
    params = {
        "AccountSid": "AC" + "a" * 32,
        "ApiVersion": "2010-04-01",
        "From": "+15005550006",
        "MessageSid": "SM" + "b" * 32,
        "MessageStatus": "delivered",
        "SmsSid": "SM" + "b" * 32,
        "SmsStatus": "delivered",
        "To": "+15551230001",
    }
    params.update(changes)
    return params


def twilio_signature(url: str, params: dict[str, str], token: str = TWILIO_TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


# --- Twilio signatures ------------------------------------------------------------------------


def test_twilio_signature_good() -> None:
    params = twilio_status_params()
    assert verify_twilio_signature(TWILIO_TOKEN, STATUS_URL, params, twilio_signature(STATUS_URL, params))


@given(st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=40), max_size=8))
def test_twilio_signature_fast_path_agrees_with_twilios_reference(params: dict[str, str]) -> None:
    """Our exact-URL check must accept what Twilio signs and nothing it would not."""
    signature = twilio_signature(STATUS_URL, params)
    assert verify_twilio_signature(TWILIO_TOKEN, STATUS_URL, params, signature)
    assert not verify_twilio_signature("another-token", STATUS_URL, params, signature)
    if params:
        first = sorted(params)[0]
        tampered = {**params, first: params[first] + "x"}
        assert not verify_twilio_signature(TWILIO_TOKEN, STATUS_URL, tampered, signature)


def test_twilio_signature_still_accepts_the_url_with_its_default_port() -> None:
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    with_port = STATUS_URL.replace(".example.com/", ".example.com:443/", 1)
    assert with_port != STATUS_URL
    assert verify_twilio_signature(TWILIO_TOKEN, STATUS_URL, params, twilio_signature(with_port, params))


def test_twilio_signature_forged_with_another_token() -> None:
    params = twilio_status_params()
    forged = twilio_signature(STATUS_URL, params, token="not-the-token")
    assert not verify_twilio_signature(TWILIO_TOKEN, STATUS_URL, params, forged)


def test_twilio_signature_tampered_parameter() -> None:
    params = twilio_status_params()
    signature = twilio_signature(STATUS_URL, params)
    assert not verify_twilio_signature(
        TWILIO_TOKEN, STATUS_URL, {**params, "MessageStatus": "failed"}, signature
    )


@pytest.mark.parametrize(
    "other_url",
    [
        "https://switchboard.example.com/webhooks/twilio/status?mid=9999",
        "https://evil.example.com/webhooks/twilio/status?mid=1234",
        "https://switchboard.example.com/webhooks/twilio/inbound?mid=1234",
    ],
)
def test_twilio_signature_wrong_url(other_url: str) -> None:
    params = twilio_status_params()
    assert not verify_twilio_signature(TWILIO_TOKEN, other_url, params, twilio_signature(STATUS_URL, params))


@pytest.mark.parametrize("signature", [None, ""])
def test_twilio_signature_missing(signature: str | None) -> None:
    assert not verify_twilio_signature(TWILIO_TOKEN, STATUS_URL, twilio_status_params(), signature)


# --- Twilio parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("queued", MessageStatus.QUEUED),
        ("sending", MessageStatus.QUEUED),
        ("sent", MessageStatus.SENT),
        ("delivered", MessageStatus.DELIVERED),
        ("undelivered", MessageStatus.UNDELIVERED),
        ("failed", MessageStatus.FAILED),
        ("read", MessageStatus.READ),
    ],
)
def test_twilio_status_mapping(raw: str, status: MessageStatus) -> None:
    receipt = parse_twilio_status(twilio_status_params(MessageStatus=raw, SmsStatus=raw), STATUS_URL)
    assert receipt.status is status and receipt.provider == "twilio"


def test_twilio_status_carries_error_code_and_our_id_from_callback_url() -> None:
    params = twilio_status_params(MessageStatus="undelivered", SmsStatus="undelivered", ErrorCode="30003")
    receipt = parse_twilio_status(params, STATUS_URL)
    assert receipt.our_message_id == 1234
    assert receipt.error_code == "30003" and receipt.error_detail == "Unreachable destination handset"
    assert receipt.provider_message_id == "SM" + "b" * 32


def test_twilio_status_without_mid_has_no_our_id() -> None:
    receipt = parse_twilio_status(
        twilio_status_params(), "https://switchboard.example.com/webhooks/twilio/status"
    )
    assert receipt.our_message_id is None


def test_twilio_status_missing_fields_is_malformed() -> None:
    with pytest.raises(MalformedWebhook, match="MessageSid"):
        parse_twilio_status({"MessageStatus": "sent"})
    with pytest.raises(MalformedWebhook, match="unknown MessageStatus"):
        parse_twilio_status(twilio_status_params(MessageStatus="teleported", SmsStatus="teleported"))


def test_twilio_inbound_parses_documented_fields() -> None:
    params = {
        "ToCountry": "US",
        "SmsMessageSid": "SM" + "c" * 32,
        "NumMedia": "0",
        "SmsSid": "SM" + "c" * 32,
        "SmsStatus": "received",
        "Body": "Can I move my appointment?",
        "To": "+15005550006",
        "NumSegments": "1",
        "MessageSid": "SM" + "c" * 32,
        "AccountSid": "AC" + "a" * 32,
        "From": "+15551230001",
        "ApiVersion": "2010-04-01",
    }
    inbound = parse_twilio_inbound(params)
    assert inbound.channel is Channel.SMS and inbound.body == "Can I move my appointment?"
    assert inbound.from_address == "+15551230001" and inbound.to_address == "+15005550006"
    with pytest.raises(MalformedWebhook):
        parse_twilio_inbound({"Body": "no sender"})


# --- WhatsApp signatures and handshake --------------------------------------------------------


def whatsapp_signature(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_whatsapp_signature_good() -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    assert verify_whatsapp_signature(APP_SECRET, body, whatsapp_signature(body))


def test_whatsapp_signature_forged_or_tampered() -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    assert not verify_whatsapp_signature(APP_SECRET, body, whatsapp_signature(body, secret="other"))
    assert not verify_whatsapp_signature(APP_SECRET, body + b" ", whatsapp_signature(body))


@pytest.mark.parametrize("header", [None, "", "sha256=", "sha1=abc", "abc"])
def test_whatsapp_signature_missing_or_wrong_prefix(header: str | None) -> None:
    body = b"{}"
    if header == "sha1=abc":
        header = "sha1=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert not verify_whatsapp_signature(APP_SECRET, body, header)


def test_whatsapp_handshake() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "let-me-in", "hub.challenge": "1158201444"}
    assert verify_whatsapp_handshake(params, "let-me-in") == "1158201444"
    assert verify_whatsapp_handshake({**params, "hub.verify_token": "guess"}, "let-me-in") is None
    assert verify_whatsapp_handshake({**params, "hub.mode": "unsubscribe"}, "let-me-in") is None
    assert verify_whatsapp_handshake(params, "") is None


# --- WhatsApp parsing -------------------------------------------------------------------------


def change(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            **value,
        },
        "field": "messages",
    }


def envelope(*changes: dict[str, Any], entries: int = 1) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": list(changes)} for _ in range(entries)],
    }


INBOUND = change(
    {
        "contacts": [{"profile": {"name": "Ada Lovelace"}, "wa_id": "15551230001"}],
        "messages": [
            {
                "from": "15551230001",
                "id": "wamid.HBgLMTU1NTEyMzAwMDEVAgASGBQzQUI0NkE4NjM1QTU2NjVGOURGQgA=",
                "timestamp": "1750857384",
                "type": "text",
                "text": {"body": "Is my order ready?"},
            },
            {
                "from": "15551230001",
                "id": "wamid.second",
                "timestamp": "1750857390",
                "type": "interactive",
                "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes please"}},
            },
        ],
    }
)
FAILED_STATUS = change(
    {
        "statuses": [
            {
                "id": "wamid.HBgLMTU1NTEyMzAwMDEVAgARGBI4MUJFRUQ1QUE1QzgxQzk4NzEA",
                "status": "failed",
                "timestamp": "1750857400",
                "recipient_id": "15551230001",
                "biz_opaque_callback_data": "987",
                "errors": [
                    {
                        "code": 131047,
                        "title": "Re-engagement message",
                        "message": "Re-engagement message",
                        "error_data": {
                            "details": "More than 24 hours have passed since the customer replied."
                        },
                        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                    }
                ],
            }
        ]
    }
)
DELIVERED_STATUS = change(
    {
        "statuses": [
            {
                "id": "wamid.delivered",
                "status": "delivered",
                "timestamp": "1750857384",
                "recipient_id": "15551230001",
                "biz_opaque_callback_data": "988",
                "conversation": {"id": "a75d17ad06104c51166f948319b03c6a", "origin": {"type": "service"}},
                "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"},
            },
            {"id": "wamid.other", "status": "read", "timestamp": "1750857390", "recipient_id": "15551230001"},
        ]
    }
)


def test_whatsapp_inbound_with_names_and_button_replies() -> None:
    inbound, receipts = parse_whatsapp_webhook(envelope(INBOUND))
    assert receipts == []
    assert [m.body for m in inbound] == ["Is my order ready?", "Yes please"]
    first = inbound[0]
    assert first.sender_name == "Ada Lovelace" and first.from_address == "15551230001"
    assert first.to_address == "15550783881" and first.channel is Channel.WHATSAPP
    assert first.received_at == datetime.fromtimestamp(1750857384, tz=UTC)


def test_whatsapp_statuses_across_entries_and_changes() -> None:
    inbound, receipts = parse_whatsapp_webhook(envelope(FAILED_STATUS, DELIVERED_STATUS, entries=2))
    assert inbound == []
    assert [r.status for r in receipts] == [
        MessageStatus.FAILED,
        MessageStatus.DELIVERED,
        MessageStatus.READ,
    ] * 2
    failed, delivered, read = receipts[:3]
    assert failed.error_code == "131047" and failed.our_message_id == 987
    assert failed.error_detail == "More than 24 hours have passed since the customer replied."
    assert delivered.our_message_id == 988 and read.our_message_id is None


def test_whatsapp_other_fields_and_unknown_statuses_are_skipped() -> None:
    account_update = {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}
    unknown = change(
        {"statuses": [{"id": "wamid.x", "status": "teleported", "timestamp": "1", "recipient_id": "1"}]}
    )
    assert parse_whatsapp_webhook(envelope(account_update, unknown)) == ([], [])


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ([], "not a JSON object"),
        ({"object": "page", "entry": []}, "whatsapp_business_account"),
        ({"object": "whatsapp_business_account"}, "'entry'"),
        ({"object": "whatsapp_business_account", "entry": [{"id": "1"}]}, "'changes'"),
        ({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages"}]}]}, "'value'"),
        (envelope(change({"messages": "nope"})), "'messages'"),
        (envelope(change({"messages": [{"id": "wamid.1", "timestamp": "1"}]})), "'from'"),
        (
            envelope(change({"statuses": [{"id": "wamid.1", "status": "sent", "timestamp": "soon"}]})),
            "timestamp",
        ),
    ],
)
def test_malformed_whatsapp_payloads_raise(payload: Any, complaint: str) -> None:
    with pytest.raises(MalformedWebhook, match=complaint):
        parse_whatsapp_webhook(payload)


def test_whatsapp_request_body_carries_our_id_and_template() -> None:
    message = OutboundMessage(
        message_id=55,
        idempotency_key="k",
        channel=Channel.WHATSAPP,
        to="+15551230001",
        body="",
        whatsapp_template=WhatsAppTemplateCall(
            "order_update", "en_US", ({"type": "body", "parameters": []},)
        ),
    )
    body = WhatsAppCloudDriver.request_body(message)
    assert body["to"] == "15551230001" and body["biz_opaque_callback_data"] == "55"
    assert body["template"]["name"] == "order_update" and body["template"]["language"] == {"code": "en_US"}
    assert json.dumps(body)  # serialisable as sent


def test_a_pick_one_question_goes_to_whatsapp_as_a_list_and_survives_the_outbox_payload() -> None:
    choices = Choices("Rate us", (Choice("csat:5", "5", "Great"), Choice("csat:1", "1")))
    assert Choices.from_payload(json.loads(json.dumps(choices.as_payload()))) == choices
    assert Choices.from_payload({"options": []}) is None and Choices.from_payload("junk") is None
    message = OutboundMessage(55, "k", Channel.WHATSAPP, "+15551230001", "How did we do?", choices=choices)
    body = WhatsAppCloudDriver.request_body(message)
    assert body["type"] == "interactive"
    assert body["interactive"] == {
        "type": "list",
        "body": {"text": "How did we do?"},
        "action": {
            "button": "Rate us",
            "sections": [
                {
                    "title": "Rate us",
                    "rows": [
                        {"id": "csat:5", "title": "5", "description": "Great"},
                        {"id": "csat:1", "title": "1"},
                    ],
                }
            ],
        },
    }


# --- Telegram ---------------------------------------------------------------------------------


def test_telegram_secret() -> None:
    assert verify_telegram_secret("s3cret-Token_1", "s3cret-Token_1")
    assert not verify_telegram_secret("s3cret-Token_1", "s3cret-Token_2")
    assert not verify_telegram_secret("s3cret-Token_1", None)
    assert not verify_telegram_secret("", "")


def test_telegram_update_parsing() -> None:
    update = {
        "update_id": 10000,
        "message": {
            "message_id": 1365,
            "from": {"id": 1111111, "is_bot": False, "first_name": "Grace", "last_name": "Hopper"},
            "chat": {"id": 1111111, "first_name": "Grace", "type": "private"},
            "date": 1441645532,
            "text": "Book me for Tuesday",
        },
    }
    inbound = parse_telegram_update(update, bot_address="@clinic_bot")
    assert inbound is not None
    assert inbound.provider_message_id == "1111111:1365" and inbound.from_address == "1111111"
    assert inbound.sender_name == "Grace Hopper" and inbound.to_address == "@clinic_bot"
    assert inbound.received_at == datetime.fromtimestamp(1441645532, tz=UTC)
    assert parse_telegram_update({"update_id": 1, "callback_query": {"id": "1", "data": "x"}}) is None
    empty = {"update_id": 2, "message": {"message_id": 1, "chat": {"id": 1, "type": "private"}, "date": 0}}
    assert parse_telegram_update(empty) is None  # a service message: nothing the customer said


def test_a_telegram_photo_or_file_without_words_is_kept_as_what_it_is() -> None:
    def sent(**media: object) -> str | None:
        update = {
            "update_id": 3,
            "message": {"message_id": 2, "chat": {"id": 5, "type": "private"}, "date": 0, **media},
        }
        inbound = parse_telegram_update(update)
        return None if inbound is None else inbound.body

    assert sent(photo=[{"file_id": "p1", "width": 90, "height": 90}]) == "[photo]"
    assert sent(document={"file_id": "d1", "file_name": "invoice.pdf"}) == "[document: invoice.pdf]"
    assert sent(video_note={"file_id": "v1"}) == "[video note]"
    assert sent(photo=[{"file_id": "p1"}], caption="My rash") == "My rash"


# --- Email ------------------------------------------------------------------------------------


def outbound_email(**changes: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "message_id": 31,
        "idempotency_key": "campaign-4:customer-9",
        "channel": Channel.EMAIL,
        "to": "ada@example.com",
        "body": "Spring offers",
        "subject": "Spring",
        "html_body": "<p>Spring offers</p>",
        "unsubscribe_url": "https://switchboard.example/u/t0k",
    }
    fields.update(changes)
    return OutboundMessage(**fields)


def test_email_build_is_multipart_with_one_click_unsubscribe_and_stable_id() -> None:
    driver = SmtpEmailDriver("127.0.0.1", 25, None, None, "Clinic <hello@clinic.example>")
    email = driver.build_email(outbound_email())
    assert email.get_content_type() == "multipart/alternative"
    assert email["Message-ID"] == message_id_for("campaign-4:customer-9", "clinic.example")
    assert driver.build_email(outbound_email())["Message-ID"] == email["Message-ID"]
    assert email["List-Unsubscribe"] == "<https://switchboard.example/u/t0k>"
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email["X-Switchboard-Message-Id"] == "31"
    plain = driver.build_email(outbound_email(unsubscribe_url=None, html_body=None))
    assert plain["List-Unsubscribe"] is None and plain.get_content_type() == "text/plain"


def test_inbound_email_parsing() -> None:
    email = EmailMessage()
    email["From"] = "Ada Lovelace <ada@example.com>"
    email["To"] = "support@clinic.example"
    email["Subject"] = "Booking"
    email["Message-ID"] = "<abc@example.com>"
    email["Date"] = "Tue, 01 Apr 2025 10:00:00 +0000"
    email.set_content("Can I come at 3?")
    email.add_alternative("<p>Can I come at 3?</p>", subtype="html")
    inbound = parse_inbound_email(email.as_bytes())
    assert inbound.body == "Can I come at 3?" and inbound.sender_name == "Ada Lovelace"
    assert inbound.from_address == "ada@example.com" and inbound.provider_message_id == "<abc@example.com>"
    assert inbound.received_at == datetime(2025, 4, 1, 10, tzinfo=UTC)
    # "-0000" is UTC with the sender's zone unknown (RFC 5322), which Python reads as a naive moment: such a
    # mail (the sandbox's, and many a relay's) failed to store, and the customer's email was lost.
    email.replace_header("Date", "Tue, 01 Apr 2025 10:00:00 -0000")
    assert parse_inbound_email(email.as_bytes()).received_at == datetime(2025, 4, 1, 10, tzinfo=UTC)
    email.replace_header("Date", "not a date")
    assert parse_inbound_email(email.as_bytes()).received_at.tzinfo is not None


def dsn(action: str, status: str, original_headers: str, *, last_attempt: str = "") -> bytes:
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "MAILER-DAEMON@mx.example.com"
    report["Subject"] = "Delivery Status Notification (Failure)"
    report.attach(MIMEText("Delivery failed.", "plain"))
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; mx.example.com"
    per_recipient["Final-Recipient"] = "rfc822; ada@example.com"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Diagnostic-Code"] = "smtp; 550 5.1.1 user unknown"
    if last_attempt:
        per_recipient["Last-Attempt-Date"] = last_attempt
    delivery_status = Message()
    delivery_status.set_type("message/delivery-status")
    delivery_status.set_payload([per_message, per_recipient])
    report.attach(delivery_status)
    report.attach(MIMEText(original_headers, "rfc822-headers"))
    return report.as_bytes()


SECRET = "secret"
ORIGINAL = (
    "Message-ID: <sb.1234@clinic.example>\nX-Switchboard-Message-Id: 31\n"
    f"X-Switchboard-Check: {id_check(SECRET, '31', '<sb.1234@clinic.example>')}\nSubject: Spring\n"
)


def test_bounce_hard_failure_is_undelivered_with_our_id() -> None:
    receipt = parse_delivery_report(dsn("failed", "5.1.1", ORIGINAL), SECRET)
    assert receipt is not None
    assert receipt.status is MessageStatus.UNDELIVERED and receipt.our_message_id == 31
    assert receipt.provider_message_id == "<sb.1234@clinic.example>" and receipt.error_code == "5.1.1"
    assert receipt.error_detail == "550 5.1.1 user unknown"  # without RFC 3464's "smtp;" type


def test_bounce_soft_failure_is_failed_and_delay_is_not_a_receipt() -> None:
    soft = parse_delivery_report(dsn("failed", "4.2.2", ORIGINAL), SECRET)
    assert soft is not None and soft.status is MessageStatus.FAILED
    assert parse_delivery_report(dsn("delayed", "4.4.1", ORIGINAL)) is None


def test_a_success_report_is_delivered_also_when_relayed_and_dated_by_the_report() -> None:
    delivered = parse_delivery_report(dsn("delivered", "2.0.0", ORIGINAL), SECRET)
    assert delivered is not None and delivered.status is MessageStatus.DELIVERED
    assert delivered.our_message_id == 31 and delivered.provider_message_id == "<sb.1234@clinic.example>"
    assert delivered.error_code is None and delivered.error_detail is None
    for action in ("expanded", "relayed"):  # a list's members; a server that does not report (Gmail's)
        other = parse_delivery_report(dsn(action, "2.0.0", ORIGINAL), SECRET)
        assert other is not None and other.status is MessageStatus.DELIVERED, action
    dated = dsn("delivered", "2.0.0", ORIGINAL, last_attempt="Tue, 1 Dec 2026 09:30:00 +0100")
    receipt = parse_delivery_report(dated, SECRET)
    assert receipt is not None and receipt.occurred_at == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


def test_a_report_names_our_row_only_with_the_check_our_email_carried() -> None:
    """Anyone can mail the reports' mailbox: without the check (or with another secret's) a report is matched
    by the original's Message-ID alone, never by the row id it claims."""
    forged = "Message-ID: <sb.9999@clinic.example>\nX-Switchboard-Message-Id: 31\n"
    for headers, secret in ((forged, SECRET), (ORIGINAL, "another secret"), (ORIGINAL, "")):
        receipt = parse_delivery_report(dsn("delivered", "2.0.0", headers), secret)
        assert receipt is not None and receipt.our_message_id is None, (headers, secret)


def test_ordinary_mail_is_not_a_bounce() -> None:
    email = EmailMessage()
    email["From"] = "ada@example.com"
    email.set_content("hello")
    assert parse_delivery_report(email.as_bytes()) is None


def test_a_bounced_report_or_alert_is_noted_not_looked_for_in_the_outbox() -> None:
    from domain.conversations.model import MailBounce, WebhookContents
    from providers.smtp.client import id_check
    from providers.smtp.webhooks import email_delivery, read_email
    from providers.webhook_bodies import ReadingContext

    message_id = "<report-1-20261201T231000Z-527a4b55@clinic.example>"
    unsigned = f"Message-ID: {message_id}\nX-Switchboard-Mail: report\n"
    report = f"{unsigned}X-Switchboard-Check: {id_check(SECRET, 'report', message_id)}\n"
    context = ReadingContext(SECRET)
    # Not looked for in the outbox: a bounce of our own mail, which fails the report's delivery (storage).
    assert read_email(email_delivery(dsn("failed", "5.1.1", report)), context) == WebhookContents(
        mail_bounces=(MailBounce("report", message_id.strip("<>"), "550 5.1.1 user unknown"),)
    )
    # Without our check (anyone can mail the mailbox), signed with another secret, or checked as another kind
    # of mail: not believed, and nothing to look for in the outbox either.
    alert = report.replace("X-Switchboard-Mail: report", "X-Switchboard-Mail: alert")
    odd = f"{unsigned}X-Switchboard-Check: =?utf-8?q?=C3=A9?=\n"  # not even ASCII: not ours, and no crash
    for raw, secret in (
        (unsigned, SECRET),
        (report, "another secret"),
        (report, ""),
        (alert, SECRET),
        (odd, SECRET),
    ):
        assert (
            read_email(email_delivery(dsn("failed", "5.1.1", raw)), ReadingContext(secret))
            == WebhookContents()
        )
    customer = read_email(email_delivery(dsn("failed", "5.1.1", ORIGINAL)), context)
    assert [r.our_message_id for r in customer.receipts] == [31]


@pytest.mark.parametrize(
    ("subject", "kept"),
    [
        ("Rechnung Frage", "Rechnung Frage"),
        ("Re: Rechnung Frage", "Rechnung Frage"),
        ("AW: WG: Re[2]: Termin", "Termin"),
        ("[EXT] Fwd: Befund", "Befund"),
        ("  Termin\n morgen ", "Termin morgen"),
        ("Re:", None),
        ("", None),
    ],
)
def test_an_emails_subject_is_kept_for_its_conversation_without_answer_prefixes(
    subject: str, kept: str | None
) -> None:
    from providers.smtp.webhooks import conversation_subject

    assert conversation_subject(subject) == kept


@pytest.mark.parametrize(
    ("message_id", "threads"),
    [
        ("<invoice-q@customer.example>", True),
        ("<CAF=x+1@mail.gmail.com>", True),
        (
            "<x\r\nBcc: evil@x.com>",
            False,
        ),  # an encoded header a customer can send: the mail library refuses it
        ("<a b@c>", False),
        ("<no-domain>", False),
        ("<" + "a" * 500 + "@b>", False),
    ],
)
def test_an_email_reply_threads_only_under_a_clean_message_id(message_id: str, threads: bool) -> None:
    """A customer's own Message-ID goes into the reply's In-Reply-To: one that a mail library would refuse
    made every reply in the conversation fail (the review)."""
    from domain.delivery.dispatch import _MESSAGE_ID

    assert bool(_MESSAGE_ID.fullmatch(message_id)) is threads
