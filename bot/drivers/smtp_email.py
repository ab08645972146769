"""Email over SMTP: building RFC 8058-ready messages, sending them, and reading replies and bounces."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import format_datetime, parseaddr, parsedate_to_datetime

import aiosmtplib

from domain.delivery.ports import (
    DeliveryReceipt,
    InboundMessage,
    OutboundMessage,
    ProviderAcceptance,
    ProviderError,
)
from domain.vocabulary import Channel, MessageStatus, Provider

#: Header carrying our message id, so bounces and replies can be matched to our row.
SWITCHBOARD_ID_HEADER = "X-Switchboard-Message-Id"

_CREDENTIALS_BACKOFF_SECONDS = 300.0


def message_id_for(idempotency_key: str, domain: str) -> str:
    """A Message-ID that is the same for every attempt at one message, so receivers can dedupe."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<sb.{digest}@{domain}>"


class SmtpEmailDriver:
    """Sends multipart text+HTML email through one SMTP relay with aiosmtplib."""

    channel: Channel = Channel.EMAIL
    provider: str = Provider.SMTP
    receipts_name_our_id: bool = False

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        from_address: str,
        *,
        use_tls: bool = False,
        start_tls: bool | None = None,
        timeout_seconds: float = 30.0,
        validate_certs: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.from_address = from_address
        self._username = username
        self._password = password
        self._use_tls = use_tls
        # None lets aiosmtplib upgrade when the server offers STARTTLS; True insists; False never.
        self._start_tls = start_tls
        self._timeout = self.timeout_seconds = timeout_seconds
        self._validate_certs = validate_certs
        self.from_domain = parseaddr(from_address)[1].rpartition("@")[2] or "localhost"

    def build_email(self, message: OutboundMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.from_address
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        email["Date"] = format_datetime(datetime.now(UTC))
        email["Message-ID"] = message_id_for(message.idempotency_key, self.from_domain)
        email[SWITCHBOARD_ID_HEADER] = str(message.message_id)
        if message.reply_to:
            email["Reply-To"] = message.reply_to
        if message.unsubscribe_url:
            # RFC 8058 one-click: mailbox providers POST "List-Unsubscribe=One-Click" to the URL.
            email["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        for name, value in message.headers.items():
            if name.lower() not in {"message-id", "from", "to", "subject"}:
                email[name] = value
        email.set_content(message.body)
        if message.html_body:
            email.add_alternative(message.html_body, subtype="html")
        return email

    async def send(self, message: OutboundMessage) -> ProviderAcceptance:
        email = self.build_email(message)
        try:
            await aiosmtplib.send(
                email,
                hostname=self.host,
                port=self.port,
                username=self._username,
                password=self._password,
                use_tls=self._use_tls,
                start_tls=self._start_tls,
                timeout=self._timeout,
                validate_certs=self._validate_certs,
            )
        except aiosmtplib.SMTPException as exc:
            raise _error_from(exc) from exc
        except OSError as exc:
            raise ProviderError(
                f"smtp: could not reach {self.host}:{self.port}: {exc}", code="connect_failed"
            ) from exc
        return ProviderAcceptance(provider_message_id=str(email["Message-ID"]), status=MessageStatus.SENT)

    async def close(self) -> None:
        """Nothing to release: each send opens and closes its own SMTP conversation."""


def _error_from(exc: aiosmtplib.SMTPException) -> ProviderError:
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return ProviderError(
            f"smtp: login refused: {exc}",
            code=str(exc.code),
            retry_after=_CREDENTIALS_BACKOFF_SECONDS,
            channel_wide=True,
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        permanent = bool(codes) and all(code >= 500 for code in codes)
        return ProviderError(
            f"smtp: recipients refused: {exc}", code=str(codes[0] if codes else ""), permanent=permanent
        )
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPConnectTimeoutError):
        return ProviderError(f"smtp: could not connect: {exc}", code="connect_failed")
    if isinstance(exc, aiosmtplib.SMTPReadTimeoutError | aiosmtplib.SMTPServerDisconnected):
        # The DATA may have been queued before the line dropped; the Message-ID stays the same on
        # a resend, so a receiver that dedupes drops the copy, but we still flag the doubt.
        return ProviderError(
            f"smtp: lost the server mid-send: {exc}", code="connection_lost", maybe_accepted=True
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return ProviderError(f"smtp {exc.code}: {exc.message}", code=str(exc.code), permanent=exc.code >= 500)
    return ProviderError(f"smtp: {exc}", code="smtp_error")


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


def parse_inbound_email(raw_bytes: bytes) -> InboundMessage:
    """Read a customer's email (RFC 5322 bytes) into an InboundMessage; the body is the plain text."""
    email = _parse(raw_bytes)
    sender_name, sender = parseaddr(str(email.get("From", "")))
    _, recipient = parseaddr(str(email.get("To", "")))
    message_id = str(email.get("Message-ID") or "").strip()
    if not message_id:
        # Without a Message-ID, the content itself is the only stable identity for dedupe.
        message_id = f"<sha256.{hashlib.sha256(raw_bytes).hexdigest()[:32]}@inbound>"
    received_at = datetime.now(UTC)
    if email.get("Date"):
        try:
            received_at = parsedate_to_datetime(str(email["Date"]))
        except (TypeError, ValueError):
            pass
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
    )


def parse_bounce(raw_bytes: bytes) -> DeliveryReceipt | None:
    """Read an RFC 3464 delivery status notification; None when the mail is not a failure report.

    A permanent failure (status 5.x.x, a hard bounce) becomes UNDELIVERED: the address cannot
    receive mail. Any other failed action becomes FAILED. "delayed" and "delivered" reports are
    not final, so they give None.
    """
    email = _parse(raw_bytes)
    if email.get_content_type() != "multipart/report":
        return None
    action, status_code, diagnostic = _delivery_status(email)
    if action != "failed":
        return None
    original = _original_headers(email)
    original_id = str(original.get("Message-ID") or original.get("Original-Message-ID") or "").strip()
    if not original_id:
        return None
    ours = str(original.get(SWITCHBOARD_ID_HEADER) or "").strip()
    return DeliveryReceipt(
        provider=Provider.SMTP,
        provider_message_id=original_id,
        status=MessageStatus.UNDELIVERED if status_code.startswith("5") else MessageStatus.FAILED,
        occurred_at=datetime.now(UTC),
        error_code=status_code or None,
        error_detail=diagnostic or None,
        our_message_id=int(ours) if ours.isdigit() else None,
    )


def _delivery_status(email: EmailMessage) -> tuple[str, str, str]:
    for part in email.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        # The first block is per-message; recipient blocks follow. Take the first recipient.
        for block in blocks[1:] if isinstance(blocks, list) else []:
            if isinstance(block, Message) and block.get("Action"):
                return (
                    str(block.get("Action", "")).strip().lower(),
                    str(block.get("Status", "")).strip(),
                    str(block.get("Diagnostic-Code", "")).strip(),
                )
    return "", "", ""


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


__all__ = [
    "SWITCHBOARD_ID_HEADER",
    "SmtpEmailDriver",
    "message_id_for",
    "parse_bounce",
    "parse_inbound_email",
]
