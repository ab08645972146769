"""Email over SMTP: building RFC 8058-ready messages, sending them, and reading replies and bounces."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import aiosmtplib

from domain.clock import utc_now
from domain.delivery.ports import (
    OutboundMessage,
    ProviderAcceptance,
    ProviderError,
)
from domain.vocabulary import Channel, MessageStatus, Provider
from providers.smtp.client import SWITCHBOARD_CHECK_HEADER, SmtpRelay, id_check
from switchboard.settings import Settings

#: Header carrying our message id, so bounces and replies can be matched to our row.
SWITCHBOARD_ID_HEADER = "X-Switchboard-Message-Id"
_CREDENTIALS_BACKOFF_SECONDS = 300.0


def message_id_for(idempotency_key: str, domain: str, secret: str = "") -> str:
    """A Message-ID that is the same for every attempt at one message, so receivers can dedupe; with a secret
    nobody outside can work it out from the message's key (and so forge a report about it)."""
    digest = hashlib.sha256(f"{secret}\n{idempotency_key}".encode() if secret else idempotency_key.encode())
    return f"<sb.{digest.hexdigest()[:32]}@{domain}>"


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
        signing_secret: str = "",
        delivery_reports: bool = True,
    ) -> None:
        self.host = host
        self.signing_secret = signing_secret
        self.delivery_reports = delivery_reports
        self.port = port
        self.from_address = from_address
        self.timeout_seconds = timeout_seconds
        self.relay = SmtpRelay(
            host, port, username, password, use_tls, start_tls, timeout_seconds, validate_certs
        )
        self.from_domain = parseaddr(from_address)[1].rpartition("@")[2] or "localhost"

    def build_email(self, message: OutboundMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.from_address
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        email["Date"] = format_datetime(utc_now())
        email["Message-ID"] = message_id_for(message.idempotency_key, self.from_domain, self.signing_secret)
        email[SWITCHBOARD_ID_HEADER] = str(message.message_id)
        if self.signing_secret:
            email[SWITCHBOARD_CHECK_HEADER] = id_check(
                self.signing_secret, str(message.message_id), str(email["Message-ID"])
            )
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
        file = message.attachment
        if file is not None and file.content is not None:
            # The file staff sent (its kept bytes, handed over by the dispatcher), as a MIME attachment; the
            # words keep its link too. Without the bytes the email goes with the link alone.
            maintype, _, subtype = (file.content_type or "application/octet-stream").partition("/")
            email.add_attachment(
                file.content, maintype=maintype, subtype=subtype or "octet-stream", filename=file.filename
            )
        return email

    async def send(self, message: OutboundMessage) -> ProviderAcceptance:
        email = self.build_email(message)
        try:
            await self.relay.send(email, delivery_reports=self.delivery_reports)
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
        # The server's own reply ("smtp 550: 5.1.1 <x@y>: Recipient address rejected: User unknown"), as
        # failure_words reads it, never the library's exception.
        said = (
            f"smtp {exc.recipients[0].code}: {exc.recipients[0].message}"
            if exc.recipients
            else "smtp: refused"
        )
        return ProviderError(said, code=str(codes[0] if codes else ""), permanent=permanent)
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


def driver_from(settings: Settings) -> SmtpEmailDriver:
    return SmtpEmailDriver(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_username or None,
        settings.smtp_password.get_secret_value() or None,
        settings.email_from,
        timeout_seconds=settings.smtp_timeout_seconds,
        signing_secret=settings.session_secret.get_secret_value(),
        delivery_reports=settings.smtp_delivery_reports,
    )


def relay_from(settings: Settings, *, timeout_seconds: float = 30.0) -> SmtpRelay:
    """The business's relay for mail that is not a customer message (report deliveries, alerts)."""
    return SmtpRelay(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_username or None,
        settings.smtp_password.get_secret_value() or None,
        start_tls=None,
        timeout_seconds=timeout_seconds,
    )
