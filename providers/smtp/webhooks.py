"""Email webhooks (inbound mail, bounces, delivery reports): is a callback genuine; read it into ports."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, HeaderParser
from email.utils import parseaddr, parsedate_to_datetime

from domain.clock import utc_now
from domain.conversations.attachments import MediaReference
from domain.conversations.model import (
    CustomerMessage,
    MailBounce,
    WebhookContents,
    WebhookDelivery,
    body_digest,
)
from domain.delivery.ports import (
    DeliveryReceipt,
    InboundMessage,
)
from domain.vocabulary import Channel, MessageStatus, Provider
from providers.smtp.client import MAIL_KIND_HEADER, SWITCHBOARD_CHECK_HEADER, id_check
from providers.smtp.driver import SWITCHBOARD_ID_HEADER
from providers.webhook_bodies import (
    UNAUTHORIZED,
    Accepted,
    IncomingWebhook,
    MalformedWebhook,
    ReadingContext,
    WebhookAnswer,
    WebhookEndpoint,
    bearer_matches,
    json_object,
)
from switchboard.settings import Settings

log = logging.getLogger(__name__)


def _parse(raw_bytes: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw_bytes, policy=policy.default)
    assert isinstance(parsed, EmailMessage)  # policy.default always builds EmailMessage
    return parsed


def _plain_text(email: EmailMessage) -> str:
    part = email.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    return content.strip() if isinstance(content, str) else ""


def is_automated(email: EmailMessage) -> bool:
    """Sent by a machine (RFC 3834 auto-replies, bulk and list mail, bounces with an empty return path)."""
    submitted = str(email.get("Auto-Submitted", "")).strip().lower()
    precedence = str(email.get("Precedence", "")).strip().lower()
    return (
        (bool(submitted) and submitted != "no")
        or precedence in {"bulk", "junk", "list", "auto_reply"}
        or email.get("List-Id") is not None
        or any(
            email.get(name) is not None
            for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")
        )
        or str(email.get("Return-Path", "")).strip() == "<>"
    )


def parse_inbound_email(raw_bytes: bytes) -> InboundMessage:
    """Read a customer's email (RFC 5322 bytes) into an InboundMessage; the body is the plain text."""
    email = _parse(raw_bytes)
    sender_name, sender = parseaddr(str(email.get("From", "")))
    _, recipient = parseaddr(str(email.get("To", "")))
    message_id = str(email.get("Message-ID") or "").strip()
    if not message_id:
        # Without a Message-ID, the content itself is the only stable identity for dedupe.
        message_id = f"<sha256.{hashlib.sha256(raw_bytes).hexdigest()[:32]}@inbound>"
    # "-0000" (UTC, the sender's zone unknown) reads as a naive moment: _moment makes it UTC.
    received_at = _moment(str(email.get("Date") or "")) or utc_now()
    text = _plain_text(email) or str(email.get("Subject", ""))
    return InboundMessage(
        provider=Provider.SMTP,
        channel=Channel.EMAIL,
        provider_message_id=message_id,
        from_address=sender,
        to_address=recipient,
        body=text,
        received_at=received_at,
        sender_name=sender_name or None,
        automated=is_automated(email),
        subject=conversation_subject(str(email.get("Subject") or "")),
    )


#: What mail programs put before a subject they answer or pass on ("Re:", "AW:", "Fwd:", "WG:", "[EXT]").
_ANSWER_PREFIX = re.compile(
    r"^(?:\s*(?:re|aw|sv|fwd?|wg|tr)\s*(?:\[\d+\])?\s*:|\s*\[[^\]]{1,20}\])+\s*", re.I
)


def conversation_subject(subject: str) -> str | None:
    """An email's subject as its conversation keeps it: one line, without "Re:"/"AW:" before it (our reply
    puts one "Re:" back); None when nothing is left."""
    said = " ".join(_ANSWER_PREFIX.sub("", " ".join(subject.split())).split())
    return said[:200] or None


#: More parts than this in one email are not looked at (a mail bomb of tiny parts costs nothing then).
MAX_EMAIL_ATTACHMENTS = 10


def email_media(raw_bytes: bytes) -> tuple[MediaReference, ...]:
    """The files attached to a customer's email, carried inside it (checked like any other file)."""
    found: list[MediaReference] = []
    for part in _parse(raw_bytes).iter_attachments():
        if len(found) >= MAX_EMAIL_ATTACHMENTS:
            break
        if not isinstance(part, EmailMessage) or part.is_multipart():
            continue
        content = part.get_payload(decode=True)
        if not isinstance(content, bytes):
            continue
        found.append(
            MediaReference(
                provider=Provider.SMTP.value,
                locator="",
                kind="file",
                declared_type=part.get_content_type(),
                filename=part.get_filename() or None,
                declared_size=len(content),
                content=content,
            )
        )
    return tuple(found)


#: RFC 3464 actions that mean a mail server past ours took the message: "delivered"; "expanded" (handed on
#: to the members of a list); "relayed" (handed to a server that does not report, as Postfix says of Gmail's),
#: which is what an email service calls delivered: the recipient's side accepted it. "delayed" is not final.
_DELIVERED_ACTIONS = frozenset({"delivered", "expanded", "relayed"})


def parse_delivery_report(raw_bytes: bytes, secret: str = "") -> DeliveryReceipt | None:
    """Read an RFC 3464 delivery status notification; None when the mail is no final report.

    A permanent failure (status 5.x.x, a hard bounce) becomes UNDELIVERED: the address cannot
    receive mail. Any other failed action becomes FAILED. A success report (asked for with
    NOTIFY=SUCCESS, see `providers.smtp.client`) becomes DELIVERED. A "delayed" report is not
    final, so it gives None.

    The report names our row only when the original's headers carry back the check `secret`
    signs (see `providers.smtp.driver`): anyone may mail the reports' mailbox. Otherwise it is
    matched by the original's Message-ID alone, which only an email we sent has.
    """
    email = _parse(raw_bytes)
    if email.get_content_type() != "multipart/report":
        return None
    action, status_code, diagnostic, reported_at = _delivery_status(email)
    if action == "failed":
        status = MessageStatus.UNDELIVERED if status_code.startswith("5") else MessageStatus.FAILED
    elif action in _DELIVERED_ACTIONS:
        status = MessageStatus.DELIVERED
    else:
        return None
    original = _original_headers(email)
    original_id = str(original.get("Message-ID") or original.get("Original-Message-ID") or "").strip()
    if not original_id:
        return None
    ours = str(original.get(SWITCHBOARD_ID_HEADER) or "").strip()
    check = str(original.get(SWITCHBOARD_CHECK_HEADER) or "").strip()
    vouched = (
        bool(secret)
        and ours.isdigit()
        and check.isascii()
        and hmac.compare_digest(check, id_check(secret, ours, original_id))
    )
    failed = status is not MessageStatus.DELIVERED
    return DeliveryReceipt(
        provider=Provider.SMTP,
        provider_message_id=original_id,
        status=status,
        occurred_at=reported_at or _date_of(email) or utc_now(),
        error_code=(status_code or None) if failed else None,
        error_detail=(diagnostic or None) if failed else None,
        our_message_id=int(ours) if vouched else None,
    )


def _date_of(email: Message) -> datetime | None:
    """The report's own Date header, when it has a readable one."""
    return _moment(str(email.get("Date") or ""))


def _moment(value: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def bounced_mail_kind(raw_bytes: bytes, secret: str = "") -> tuple[str, bool] | None:
    """What kind of our mail to staff bounced (report, alert), from the original's headers, and whether
    they carry back the check the signing secret made of that kind and Message-ID (see
    `providers.smtp.client.mark_own_mail`); None for a customer message."""
    original = _original_headers(_parse(raw_bytes))
    kind = str(original.get(MAIL_KIND_HEADER) or "").strip()
    if not kind:
        return None
    message_id = str(original.get("Message-ID") or "").strip()
    check = str(original.get(SWITCHBOARD_CHECK_HEADER) or "").strip()
    vouched = (
        bool(secret and message_id)
        and check.isascii()  # compare_digest refuses other text: a forged header is simply not ours
        and hmac.compare_digest(check, id_check(secret, kind, message_id))
    )
    return kind, vouched


def _delivery_status(email: EmailMessage) -> tuple[str, str, str, datetime | None]:
    """The first recipient's action, status and diagnostic, and when it happened (its Last-Attempt-Date, else
    the message's Arrival-Date), so a report applied later (replayed) still dates the delivery right."""
    for part in email.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        arrived = _moment(str(blocks[0].get("Arrival-Date", ""))) if isinstance(blocks[0], Message) else None
        # The first block is per-message; recipient blocks follow. Take the first recipient.
        for block in blocks[1:]:
            if isinstance(block, Message) and block.get("Action"):
                return (
                    str(block.get("Action", "")).strip().lower(),
                    str(block.get("Status", "")).strip(),
                    _said(str(block.get("Diagnostic-Code", ""))),
                    _moment(str(block.get("Last-Attempt-Date", ""))) or arrived,
                )
    return "", "", "", None


def _said(diagnostic: str) -> str:
    """A Diagnostic-Code as staff read it: "smtp; 550 5.1.1 …" is RFC 3464's type, then the server's words."""
    kind, semicolon, words = diagnostic.partition(";")
    return " ".join(
        (words if semicolon and kind.strip().lower() in {"smtp", "x-postfix"} else diagnostic).split()
    )


def _original_headers(email: EmailMessage) -> Message:
    for part in email.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if kind == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(part.get_payload())
            return HeaderParser().parsestr(text)
    # Some mail servers only echo the id in the per-message block of the status part.
    header = Message()
    for part in email.walk():
        if part.get_content_type() == "message/delivery-status":
            blocks = part.get_payload()
            if isinstance(blocks, list) and blocks and isinstance(blocks[0], Message):
                if blocks[0].get("Original-Message-ID"):
                    header["Message-ID"] = str(blocks[0]["Original-Message-ID"])
    return header


#: Inbox `kind` of an inbound email (a reply or a bounce).
INBOUND_KIND = "email"
#: Content type of an email body kept base64-encoded because it was not UTF-8.
EMAIL_BASE64 = "message/rfc822; transfer=base64"


def email_delivery(raw: bytes) -> WebhookDelivery:
    """Keeps an email for the inbox, deduped by its Message-ID (or its content when it has none)."""
    message_id = str(BytesHeaderParser().parsebytes(raw).get("Message-ID") or "").strip()
    try:
        body, content_type = raw.decode("utf-8"), "message/rfc822"
    except UnicodeDecodeError:
        body, content_type = base64.b64encode(raw).decode(), EMAIL_BASE64
    return WebhookDelivery(
        Provider.SMTP.value, INBOUND_KIND, message_id or body_digest(raw), body, content_type
    )


def email_bytes(delivery: WebhookDelivery) -> bytes:
    if delivery.content_type == EMAIL_BASE64:
        return base64.b64decode(delivery.body)
    return delivery.body.encode("utf-8")


def read_email(delivery: WebhookDelivery, context: ReadingContext) -> WebhookContents:
    raw = email_bytes(delivery)
    secret = context.link_secret
    secret_text = secret if isinstance(secret, str) else secret.get_secret_value()
    report = parse_delivery_report(raw, secret_text)
    if report is not None:
        ours = bounced_mail_kind(raw, secret_text)
        if ours is not None:
            # A report or an alert to staff, not a customer message: nothing in the outbox to update, but a
            # report's delivery that did not arrive is failed (storage.bounced_mail).
            kind, vouched = ours
            if report.status is MessageStatus.DELIVERED:
                return WebhookContents()
            message_id = (report.provider_message_id or "").strip().strip("<>")
            if not vouched:
                # Anyone can mail the reports' mailbox: a bounce without our check could fail a delivered
                # report. Taken (nothing to replay) and logged; an email sent before the signing secret
                # changed bounces so too.
                log.warning(
                    "a bounce naming our %s email %s does not carry our check, so it was not believed",
                    kind,
                    message_id,
                )
                return WebhookContents()
            error = report.error_detail or report.error_code or "bounced"
            return WebhookContents(mail_bounces=(MailBounce(kind, message_id, error),))
        return WebhookContents(receipts=(report,))
    if BytesHeaderParser().parsebytes(raw).get_content_type() == "multipart/report":
        return WebhookContents()  # a delay report: nothing final to record
    message = parse_inbound_email(raw)
    if not message.from_address:
        raise MalformedWebhook("inbound email has no From address")
    return WebhookContents(messages=(CustomerMessage(message, media=email_media(raw)),))


# --- the webhook URL a mail relay posts inbound mail to -----------------------------------------------------


async def accept_email(incoming: IncomingWebhook, settings: Settings) -> Accepted | WebhookAnswer:
    """A relay posts the raw RFC 822 message (or JSON {"raw": "..."}) with the API token as Bearer."""
    if not bearer_matches(incoming.header("authorization"), settings.api_token.get_secret_value()):
        return WebhookAnswer("unauthorized", 401)
    raw = await incoming.read_body()
    if (incoming.header("content-type") or "").split(";")[0].strip().lower() == "application/json":
        try:
            value = json_object(raw, "email webhook").get("raw")
        except MalformedWebhook:
            value = None
        if not isinstance(value, str):
            return WebhookAnswer('expected {"raw": "<RFC 822 message>"}', 400)
        raw = value.encode("utf-8", "surrogateescape")
    if not raw.strip():
        return WebhookAnswer("empty message", 400)
    return Accepted(email_delivery(raw), WebhookAnswer("ok"))


ENDPOINTS = (
    WebhookEndpoint(
        "email_inbound",
        "POST",
        "/webhooks/email/inbound",
        "text/plain",
        {400: "The body is empty, or JSON without a `raw` message.", 401: UNAUTHORIZED},
        accept_email,
    ),
)
