"""The one way Switchboard hands an email to its SMTP relay: customer email, report delivery, alerts."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

#: Marks mail that is not a customer message (a scheduled report, an alert to staff), so that its bounce
#: is not looked for in the outbox.
MAIL_KIND_HEADER = "X-Switchboard-Mail"


@dataclass(frozen=True)
class SmtpRelay:
    """Where and how to submit mail; each send opens and closes its own SMTP conversation."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    #: None lets aiosmtplib upgrade when the server offers STARTTLS; True insists; False never.
    start_tls: bool | None = None
    timeout_seconds: float = 30.0
    validate_certs: bool = True

    async def send(self, message: EmailMessage, *, timeout_seconds: float | None = None) -> None:
        """Raises aiosmtplib.SMTPException or OSError when the relay refuses or cannot be reached."""
        await aiosmtplib.send(
            message,
            hostname=self.host,
            port=self.port,
            username=self.username or None,
            password=self.password or None,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            timeout=self.timeout_seconds if timeout_seconds is None else timeout_seconds,
            validate_certs=self.validate_certs,
        )
