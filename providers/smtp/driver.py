"""Email over SMTP: building RFC 8058-ready messages, sending them, and reading replies and bounces."""

from __future__ import annotations

import hashlib
import logging
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import aiohttp
import aiosmtplib

from domain.clock import utc_now
from domain.delivery.ports import (
    OutboundMessage,
    ProviderAcceptance,
    ProviderError,
)
from domain.vocabulary import Channel, MessageStatus, Provider
from providers.smtp.client import SmtpRelay
from switchboard.settings import Settings

log = logging.getLogger(__name__)

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
        files_from: str | None = None,
        max_file_bytes: int = 10 * 1024 * 1024,
        file_timeout_seconds: float = 8.0,
    ) -> None:
        #: Staff files are attached when their signed link is under this public URL (None: links only).
        self.files_from = files_from
        self.max_file_bytes = max_file_bytes
        self.file_timeout_seconds = file_timeout_seconds
        self.host = host
        self.port = port
        self.from_address = from_address
        self.timeout_seconds = timeout_seconds
        self.relay = SmtpRelay(
            host, port, username, password, use_tls, start_tls, timeout_seconds, validate_certs
        )
        self.from_domain = parseaddr(from_address)[1].rpartition("@")[2] or "localhost"

    def build_email(self, message: OutboundMessage, file: bytes | None = None) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.from_address
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        email["Date"] = format_datetime(utc_now())
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
        if file is not None and message.attachment is not None:
            # The file staff sent, as a MIME attachment; the words keep its link too.
            maintype, _, subtype = (message.attachment.content_type or "application/octet-stream").partition(
                "/"
            )
            email.add_attachment(
                file,
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=message.attachment.filename,
            )
        return email

    async def send(self, message: OutboundMessage) -> ProviderAcceptance:
        file = await self._attached(message)
        email = self.build_email(message, file)
        try:
            await self.relay.send(email)
        except aiosmtplib.SMTPException as exc:
            raise _error_from(exc) from exc
        except OSError as exc:
            raise ProviderError(
                f"smtp: could not reach {self.host}:{self.port}: {exc}", code="connect_failed"
            ) from exc
        return ProviderAcceptance(provider_message_id=str(email["Message-ID"]), status=MessageStatus.SENT)

    async def _attached(self, message: OutboundMessage) -> bytes | None:
        """The file a staff reply carries, fetched from its signed link under our own public URL (nowhere
        else), within the size limit and the time limit; None when there is none or it cannot be had, and the
        email then goes with the link in its words alone."""
        attachment = message.attachment
        if attachment is None or self.files_from is None:
            return None
        if not attachment.url.startswith(self.files_from.rstrip("/") + "/media/"):
            return None
        try:
            timeout = aiohttp.ClientTimeout(total=self.file_timeout_seconds)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(attachment.url) as answer,
            ):
                if answer.status != 200:
                    raise ValueError(f"the link answered {answer.status}")
                content = await answer.content.read(self.max_file_bytes + 1)
            if len(content) > self.max_file_bytes:
                raise ValueError("the file is over the attachment limit")
            return content
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            log.warning("email %s goes with the file's link only: %s", message.message_id, error)
            return None

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


def driver_from(settings: Settings) -> SmtpEmailDriver:
    return SmtpEmailDriver(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_username or None,
        settings.smtp_password.get_secret_value() or None,
        settings.email_from,
        timeout_seconds=settings.smtp_timeout_seconds,
        files_from=settings.public_url or None,
        max_file_bytes=settings.attachment_max_bytes,
        file_timeout_seconds=settings.attachment_fetch_timeout_seconds,
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
