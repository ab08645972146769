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

    async def send(
        self,
        message: EmailMessage,
        *,
        timeout_seconds: float | None = None,
        delivery_reports: bool = False,
    ) -> None:
        """Raises aiosmtplib.SMTPException or OSError when the relay refuses or cannot be reached.

        With `delivery_reports`, a relay that offers DSN (RFC 3461) is asked to report delivery as
        well as failure, with the original's headers (RET=HDRS), so the report names our message id.
        A relay that does not offer it gets the plain commands: asking anyway would be refused (555).
        """
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username or None,
            password=self.password or None,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            timeout=self.timeout_seconds if timeout_seconds is None else timeout_seconds,
            validate_certs=self.validate_certs,
        )
        async with client:
            mail_options: list[str] = []
            rcpt_options: list[str] = []
            if delivery_reports:
                if client.is_ehlo_or_helo_needed:
                    try:
                        await client.ehlo()
                    except aiosmtplib.SMTPHeloError:
                        await client.helo()  # a relay without ESMTP: no DSN either
                if client.supports_extension("dsn"):
                    mail_options, rcpt_options = list(DSN_MAIL_OPTIONS), list(DSN_RCPT_OPTIONS)
            await client.send_message(message, mail_options=mail_options, rcpt_options=rcpt_options)


#: RFC 3461 parameters asking a DSN-capable relay for a report on delivery and on failure (never on a
#: mere delay), carrying the original's headers only.
DSN_MAIL_OPTIONS = ("RET=HDRS",)
DSN_RCPT_OPTIONS = ("NOTIFY=SUCCESS,FAILURE",)
