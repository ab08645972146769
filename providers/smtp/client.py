"""The one way Switchboard hands an email to its SMTP relay: customer email, report delivery, alerts."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

#: Marks mail that is not a customer message (a scheduled report, an alert to staff), so that its bounce
#: is not looked for in the outbox.
MAIL_KIND_HEADER = "X-Switchboard-Mail"
#: Header vouching for what a mail is and its Message-ID together (an HMAC with the signing secret): a
#: delivery report is believed only when it carries this back, since anyone can mail the reports' mailbox.
#: Customer email signs our message id; reports and alerts sign their kind.
SWITCHBOARD_CHECK_HEADER = "X-Switchboard-Check"


def id_check(secret: str, our_id: str, message_id: str) -> str:
    return hmac.new(secret.encode(), f"{our_id}|{message_id}".encode(), hashlib.sha256).hexdigest()[:32]


def mark_own_mail(message: EmailMessage, kind: str, secret: str, domain: str) -> None:
    """Marks mail to staff (kind "report" or "alert"): its kind, a Message-ID (made when it has none), and,
    with a signing secret, the check its bounce must carry back to be believed (providers.smtp.webhooks)."""
    message[MAIL_KIND_HEADER] = kind
    if message["Message-ID"] is None:
        message["Message-ID"] = make_msgid(domain=domain)
    if secret:
        message[SWITCHBOARD_CHECK_HEADER] = id_check(secret, kind, str(message["Message-ID"]))


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
